//! What a store reads for one candidate of an admission, per license type, and how the answers
//! become the [`ItemState`] that [`crate::admission::decide`] judges. Every store asks the same
//! questions, so the stores differ only in how they count rows.
//!
//! | type | asked when the device holds no place (today, for per active device) |
//! | --- | --- |
//! | per device | active registrations |
//! | per active device | other devices admitted today and still active |
//! | concurrent device / instance | units held now; exceptions since the allowance year began (always) |
//! | per instance | units held now (always) |
//! | per usage | usage counted (always) |
//! | per domain | whether the domain holds a place; if not, the other active domains |

use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;

use crate::admission::{Ask, ItemState, allowance_year_start};

/// The requesting device's own registration on the item, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnPlace {
    pub active_until: UnixSeconds,
    /// UTC day number of its last admission (per active device).
    pub active_day: Option<i64>,
    pub units: u64,
}

/// Counts a store must read for one candidate; `false`/`None` means not needed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Questions {
    /// Registrations with `active_until > now`.
    pub active_devices: bool,
    /// Devices other than the requesting one with `active_day` = this day and
    /// `active_until > now`.
    pub other_devices_today: Option<i64>,
    /// Units of registrations with `active_until > now`.
    pub held_units: bool,
    /// Sum of the exceptions recorded from this slice on.
    pub exceptions_since_slice: Option<i64>,
    /// Usage charged to the item.
    pub usage_used: bool,
    /// The domain whose place is asked about: does an active registration hold it, and, when
    /// not, how many other domains hold places.
    pub domain: Option<String>,
}

/// The store's answers to [`Questions`]; unasked answers stay 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Answers {
    pub active_devices: u64,
    pub other_devices_today: u64,
    pub held_units: u64,
    pub exceptions: u64,
    pub usage_used: u64,
    pub domain_held: bool,
    /// Only needed when `domain_held` is false.
    pub other_domains: u64,
}

fn is_active(own: Option<&OwnPlace>, now: UnixSeconds) -> bool {
    own.is_some_and(|p| p.active_until > now)
}

fn seen_today(own: Option<&OwnPlace>, now: UnixSeconds) -> bool {
    own.is_some_and(|p| p.active_until > now && p.active_day == Some(now.div_euclid(86_400)))
}

/// What the store must count for `item` (see the module's table).
pub fn questions(
    item: &LicenseItem,
    own: Option<&OwnPlace>,
    ask: &Ask,
    now: UnixSeconds,
) -> Questions {
    let mut q = Questions::default();
    match item.license_type {
        LicenseType::PerDevice => q.active_devices = !is_active(own, now),
        LicenseType::PerActiveDevice => {
            if !seen_today(own, now) {
                q.other_devices_today = Some(now.div_euclid(86_400));
            }
        }
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => {
            q.held_units = true;
            q.exceptions_since_slice = Some(slice_of(allowance_year_start(item, now)));
        }
        LicenseType::PerInstance => q.held_units = true,
        LicenseType::PerUsage => q.usage_used = true,
        LicenseType::PerDomain => q.domain = Some(ask.domain.clone().unwrap_or_default()),
    }
    q
}

/// The item's live state from the store's answers.
pub fn item_state(own: Option<&OwnPlace>, answers: &Answers, now: UnixSeconds) -> ItemState {
    let device_active = is_active(own, now);
    // The device's own units, when it holds a place, are not "other" units.
    let own_units = if device_active {
        own.map_or(0, |p| p.units)
    } else {
        0
    };
    ItemState {
        // Asked only when the device holds no place: every place counted is another device's.
        other_active_devices: answers.active_devices,
        device_active,
        other_devices_today: answers.other_devices_today,
        device_seen_today: seen_today(own, now),
        other_units: answers.held_units.saturating_sub(own_units),
        exceptions_this_year: answers.exceptions,
        usage_used: answers.usage_used,
        other_domains: if answers.domain_held {
            0
        } else {
            answers.other_domains
        },
        domain_known: answers.domain_held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::item;

    const NOW: i64 = 1_780_272_000;

    fn own(until: i64, day: Option<i64>, units: u64) -> OwnPlace {
        OwnPlace {
            active_until: until,
            active_day: day,
            units,
        }
    }

    #[test]
    fn a_device_holding_its_place_needs_no_count_of_others() {
        let mut i = item(LicenseType::PerDevice);
        assert!(questions(&i, None, &Ask::default(), NOW).active_devices);
        let held = own(NOW + 10, None, 1);
        assert!(!questions(&i, Some(&held), &Ask::default(), NOW).active_devices);
        let lapsed = own(NOW, None, 1);
        assert!(questions(&i, Some(&lapsed), &Ask::default(), NOW).active_devices);
        i.license_type = LicenseType::PerActiveDevice;
        let today = NOW.div_euclid(86_400);
        let seen = own(NOW + 10, Some(today), 1);
        assert_eq!(
            questions(&i, Some(&seen), &Ask::default(), NOW).other_devices_today,
            None
        );
        let yesterday = own(NOW + 10, Some(today - 1), 1);
        assert_eq!(
            questions(&i, Some(&yesterday), &Ask::default(), NOW).other_devices_today,
            Some(today)
        );
    }

    #[test]
    fn concurrent_items_ask_for_seats_and_this_years_exceptions() {
        let i = item(LicenseType::ConcurrentDevice);
        let q = questions(&i, None, &Ask::default(), NOW);
        assert!(q.held_units);
        assert_eq!(
            q.exceptions_since_slice,
            Some(slice_of(allowance_year_start(&i, NOW)))
        );
        let p = questions(&item(LicenseType::PerInstance), None, &Ask::default(), NOW);
        assert!(p.held_units && p.exceptions_since_slice.is_none());
    }

    #[test]
    fn the_devices_own_units_are_not_counted_as_others() {
        let answers = Answers {
            held_units: 5,
            ..Answers::default()
        };
        let held = own(NOW + 60, None, 2);
        assert_eq!(item_state(Some(&held), &answers, NOW).other_units, 3);
        let lapsed = own(NOW - 1, None, 2);
        let state = item_state(Some(&lapsed), &answers, NOW);
        assert_eq!((state.other_units, state.device_active), (5, false));
    }

    #[test]
    fn a_known_domain_ignores_the_count_of_others() {
        let q = questions(
            &item(LicenseType::PerDomain),
            None,
            &Ask {
                instances: 1,
                domain: Some("a.example".into()),
            },
            NOW,
        );
        assert_eq!(q.domain.as_deref(), Some("a.example"));
        let known = Answers {
            domain_held: true,
            other_domains: 7,
            ..Answers::default()
        };
        let state = item_state(None, &known, NOW);
        assert!(state.domain_known);
        assert_eq!(state.other_domains, 0);
    }
}
