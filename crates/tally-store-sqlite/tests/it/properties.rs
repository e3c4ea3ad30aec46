//! The random scenarios of the conformance suite's property case (`random_ops`), on a fresh
//! database each, checking after every step what only SQLite's tables show: the maintained place
//! counters (`item_places`) equal a count of the registrations they cover, and concurrent
//! overuse (`exceptions`) stays within the yearly allowance. (The quota checks through the trait
//! run as well.)

use proptest::prelude::*;
use rusqlite::{Connection, OptionalExtension};
use tally_core::admission::exception_allowance;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_store_conformance::random_ops::{Scenario, play, scenario};

use super::*;

fn scalar(c: &Connection, sql: &str, item: &str, now: i64) -> u64 {
    let v: Option<i64> = c
        .query_row(sql, rusqlite::params![item, now], |r| r.get(0))
        .optional()
        .unwrap()
        .flatten();
    u64::try_from(v.unwrap_or(0)).unwrap()
}

/// The maintained place counters equal a count of the registrations they cover.
fn check_counters(c: &Connection, item: &str) -> Result<(), TestCaseError> {
    let row: Option<(i64, i64, i64)> = c
        .query_row(
            "SELECT held, held_units, swept_until FROM item_places WHERE item_id = ?1",
            [item],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .unwrap();
    if let Some((held, units, swept_until)) = row {
        let counted = scalar(
            c,
            "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2",
            item,
            swept_until,
        );
        let counted_units = scalar(
            c,
            "SELECT SUM(units) FROM devices WHERE item_id = ?1 AND active_until > ?2",
            item,
            swept_until,
        );
        prop_assert_eq!(u64::try_from(held).unwrap(), counted, "held devices");
        prop_assert_eq!(u64::try_from(units).unwrap(), counted_units, "held units");
    }
    Ok(())
}

/// Concurrent overuse recorded never exceeds the yearly exception allowance.
fn check_exceptions(c: &Connection, item: &LicenseItem, now: i64) -> Result<(), TestCaseError> {
    if matches!(
        item.license_type,
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance | LicenseType::PerInstance
    ) {
        let exceptions = scalar(
            c,
            "SELECT SUM(excess) FROM exceptions WHERE item_id = ?1 AND ?2 = ?2",
            &item.id,
            now,
        );
        prop_assert!(exceptions <= exception_allowance(item));
    }
    Ok(())
}

fn run(scenario: Scenario) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let reader = Connection::open(dir.path().join("tally.db")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(play(&store, "acme", &scenario, &mut move |item, now| {
        check_counters(&reader, &item.id)?;
        check_exceptions(&reader, item, now)
    }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn place_counters_and_overuse_stay_exact_under_random_operations(scenario in scenario()) {
        run(scenario)?;
    }
}
