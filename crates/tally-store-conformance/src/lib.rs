//! The store conformance suite: one set of behaviour tests that every [`tally_store::Store`]
//! backend runs through `Arc<dyn Store>`, so that SQLite, PostgreSQL and any later store keep
//! the same contract.
//!
//! * [`fixtures`]: the helpers store tests build their rows with (the one place a
//!   `LicenseItem` is built).
//! * [`cases`]: the cases, `pub async fn case(store: Arc<dyn Store>)`, one module per area. They
//!   use the `Store` trait only.
//! * [`random_ops`]: random sequences of authorizations, reports, time steps and unregistrations
//!   (the property case), reusable by a backend that checks its own tables on top.
//! * [`conformance_suite!`]: expands to one named `#[tokio::test]` per case for a backend.
//!
//! A backend's integration tests open a fresh store per case:
//!
//! ```text
//! async fn open_subject() -> tally_store_conformance::Subject {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("tally.db")).unwrap();
//!     Subject::new(Arc::new(store), dir)
//! }
//!
//! tally_store_conformance::conformance_suite! {
//!     open: crate::open_subject,
//!     attributes: #[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
//! }
//! ```

// This crate is test support: a case that meets an unexpected error must fail loudly, as a test
// does, and `unwrap` is how it says so.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use tally_store::Store;

pub mod cases;
pub mod fixtures;
pub mod random_ops;

/// A fresh, empty store under test and whatever keeps it alive (a temporary directory, a test
/// database that is dropped afterwards), dropped after the store.
pub struct Subject {
    pub store: Arc<dyn Store>,
    #[allow(dead_code)] // never read: it is only kept until the subject is dropped
    guard: Box<dyn Any + Send>,
}

impl Subject {
    /// A store and the guard that must outlive it.
    pub fn new(store: Arc<dyn Store>, guard: impl Any + Send) -> Self {
        Subject {
            store,
            guard: Box::new(guard),
        }
    }
}

/// What the generated tests use, so that a backend needs no direct dependency of its own.
#[doc(hidden)]
pub mod __private {
    pub use tokio;
}

/// The single list of cases, as `module::case`. The test generator ([`conformance_suite!`]) and
/// [`CASES`] are both expanded from it; a unit test compares it with the `pub async fn`s written
/// in `src/cases/*.rs`, so a case cannot be written and left out.
///
/// `$callback` is the name of a macro of this crate; it receives `$ctx` and then the list.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:ident ! { $($ctx:tt)* }) => {
        $crate::$callback! { $($ctx)* [
            shared::a_setting_inserted_by_racing_callers_keeps_one_value,
            shared::a_lease_has_one_holder_until_it_expires_or_is_released,
            shared::an_envelope_is_used_once_until_it_is_forgotten,
            shared::session_messages_are_accepted_once_within_the_window,
            shared::the_sweep_forgets_only_what_expired,
            licenses::import_is_idempotent_and_attaches_items_to_the_default_code,
            licenses::a_conflicting_item_id_writes_nothing,
            licenses::a_license_listing_an_item_twice_is_a_conflict,
            licenses::a_default_code_already_taken_is_a_conflict_and_writes_nothing,
            licenses::a_new_activation_of_a_license_replaces_its_file_and_keeps_its_items,
            licenses::items_and_license_text_round_trip_exactly,
            licenses::licenses_come_back_in_import_order,
            licenses::handshake_creation_checks_its_references,
            licenses::handshake_changes_are_kept_and_listed,
            admission::per_device_places_fill_lapse_and_stay_with_known_devices,
            admission::grace_adds_rounded_places_beyond_the_quantity,
            admission::per_active_device_counts_one_device_per_day,
            admission::concurrent_device_seats_allow_bounded_overuse,
            admission::concurrent_overuse_is_limited_per_allowance_year,
            admission::concurrent_instance_counts_the_declared_instances,
            admission::per_instance_counts_instances_until_they_lapse,
            admission::per_usage_refuses_every_device_once_used_up,
            admission::per_domain_counts_distinct_domains,
            admission::when_the_first_candidate_is_full_the_second_serves,
            admission::a_renewed_registration_keeps_its_first_contact_and_name,
            admission::two_hundred_simultaneous_admissions_for_five_places_admit_exactly_five,
            admission::simultaneous_admissions_hold_every_counted_quota,
            reports::reports_count_once_per_id,
            reports::a_report_repeated_within_one_batch_counts_once,
            reports::the_same_report_sent_concurrently_counts_once,
            reports::overlapping_batches_sent_concurrently_count_each_report_once,
            reports::counts_land_in_their_day_and_feature_and_filters_apply,
            reports::days_before_the_epoch_are_floored,
            reports::usage_per_item_and_hour_goes_to_the_item_the_device_holds,
            reports::huge_counts_saturate_instead_of_breaking_the_counters,
            reports::usage_is_charged_to_the_per_usage_item_the_device_holds,
            reports::only_the_counted_features_are_charged,
            reports::a_device_without_a_live_place_on_the_code_records_nothing,
            reports::a_report_renews_live_places_and_never_revives_lapsed_ones,
            reports::the_reply_names_a_per_usage_item_once_it_is_used_up,
            places::a_clock_moved_back_never_admits_more_than_a_count_would,
            places::unregistering_frees_the_place_for_another_device,
            places::unregistering_frees_every_place_of_the_device,
            places::registrations_are_paged_most_recently_seen_first,
            trials::a_trial_starts_once_and_never_again,
            trials::simultaneous_first_calls_agree_on_one_trial,
            portal::sessions_expire_and_are_purged_by_a_new_sign_in,
            portal::signing_out_deletes_one_session_or_every_session,
            audit::the_audit_log_lists_the_newest_entries_first_up_to_the_limit,
            alerts::alert_levels_are_upserted_by_key,
            alerts::the_alert_history_lists_newest_first_with_its_delivery,
            alerts::auth_outcomes_add_up_per_code_and_forget_old_minutes,
            deliveries::due_deliveries_are_claimed_once_and_kept_until_sent_or_given_up,
            deliveries::racing_claimers_take_each_delivery_once,
            deliveries::the_history_lists_every_attempt_per_delivery,
            settings::settings_are_upserted,
            settings::settings_hold_any_text_per_key,
            properties::quotas_hold_for_every_license_type,
        ] }
    };
}

/// Generates, for a backend, a `mod conformance` with one
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per case, named after the case.
/// Each test opens a fresh [`Subject`] with `open` (a path to an `async fn() -> Subject`) and
/// runs the case on its store; `attributes` (optional) are put on every generated test.
///
/// ```text
/// tally_store_conformance::conformance_suite! {
///     open: crate::open_subject,
///     attributes: #[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
/// }
/// ```
#[macro_export]
macro_rules! conformance_suite {
    (open: $open:path $(, attributes: $(#[$attr:meta])*)? $(,)?) => {
        $crate::__with_cases! { __suite_tests! { $open; [$($(#[$attr])*)?]; } }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($open:path; $attrs:tt; [$($module:ident :: $case:ident),* $(,)?]) => {
        /// The store conformance suite (`tally-store-conformance`), one test per case.
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            $( $crate::__suite_test! { $open; $attrs; $module :: $case } )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_test {
    ($open:path; [$(#[$attr:meta])*]; $module:ident :: $case:ident) => {
        // `crate` names this crate's tokio for the code the attribute generates (it takes a
        // string, where `$crate` is not expanded), so a backend needs no tokio of its own.
        #[$crate::__private::tokio::test(
            flavor = "multi_thread",
            worker_threads = 4,
            crate = "::tally_store_conformance::__private::tokio"
        )]
        $(#[$attr])*
        async fn $case() {
            let subject: $crate::Subject = $open().await;
            $crate::cases::$module::$case(::std::sync::Arc::clone(&subject.store)).await;
            drop(subject);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_names {
    ([$($module:ident :: $case:ident),* $(,)?]) => {
        /// Every case, as `module::case`, in the order the suite lists them.
        pub const CASES: &[&str] = &[$(concat!(stringify!($module), "::", stringify!($case))),*];

        /// Every listed case exists with the signature the generated tests call, and its future
        /// can run on any worker thread.
        #[cfg(test)]
        #[test]
        fn every_listed_case_is_a_case() {
            fn is_case<F>(_: fn(::std::sync::Arc<dyn ::tally_store::Store>) -> F)
            where
                F: ::std::future::Future<Output = ()> + Send + 'static,
            {
            }
            $( is_case($crate::cases::$module::$case); )*
        }
    };
}

__with_cases! { __case_names! {} }

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::CASES;

    /// `module::name` of every `pub async fn` in `src/cases/*.rs`.
    fn written_cases() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.extension().is_none_or(|e| e != "rs") || module == "mod" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("pub async fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    found.push(format!("{module}::{name}"));
                }
            }
        }
        found
    }

    #[test]
    fn every_written_case_is_listed_once() {
        let written = written_cases();
        assert!(written.len() > 40, "cases found: {written:?}");
        let listed: BTreeSet<&str> = CASES.iter().copied().collect();
        assert_eq!(listed.len(), CASES.len(), "a case is listed twice");
        let written_set: BTreeSet<&str> = written.iter().map(String::as_str).collect();
        assert_eq!(written_set.len(), written.len(), "a case is written twice");
        let unlisted: Vec<&&str> = written_set.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "cases not in the suite's list: {unlisted:?}"
        );
        let missing: Vec<&&str> = listed.difference(&written_set).collect();
        assert!(missing.is_empty(), "listed but not written: {missing:?}");
    }

    /// The generated tests share one module: a name used in two areas would clash there.
    #[test]
    fn case_names_are_unique_across_areas() {
        let mut names = BTreeSet::new();
        for case in CASES {
            let name = case.rsplit("::").next().unwrap();
            assert!(names.insert(name), "{name} names two cases");
        }
    }
}
