//! Property tests: random sequences of authorizations, reports and time steps against the real
//! store, checking after every step that no license type ever gives more than it may.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use rusqlite::Connection;
use tally_core::admission::{Ask, Decision, device_allowance, exception_allowance, usage_limit};
use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType};
use tally_store::{AdmitRequest, ReportBatch, ReportRow, Store};
use tally_store_sqlite::SqliteStore;

use super::{NOW, new_license};

#[derive(Debug, Clone)]
enum Op {
    Authorize {
        device: u8,
        instances: u8,
        domain: u8,
    },
    Report {
        device: u8,
        count: u16,
    },
    Advance {
        seconds: u32,
    },
    Unregister {
        device: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 1u8..4, 0u8..5).prop_map(|(device, instances, domain)| Op::Authorize { device, instances, domain }),
        2 => (0u8..8, 0u16..40).prop_map(|(device, count)| Op::Report { device, count }),
        1 => prop_oneof![0u32..400, 0u32..200_000].prop_map(|seconds| Op::Advance { seconds }),
        1 => (0u8..8).prop_map(|device| Op::Unregister { device }),
    ]
}

fn item(license_type: LicenseType, grace: u8) -> LicenseItem {
    LicenseItem {
        id: "q".into(),
        product: "scanner".into(),
        versions: None,
        modules: vec![],
        license_type,
        quantity: 3,
        start: NOW - 10,
        end: NOW + 40 * 86_400,
        grace_percent: grace,
        active_window: ActiveWindow::Hours24,
        metric: None,
        max_offline_days: None,
        grace_days: None,
    }
}

fn scalar(c: &Connection, sql: &str, now: i64) -> u64 {
    use rusqlite::OptionalExtension;
    let v: Option<i64> = c
        .query_row(sql, [now], |r| r.get(0))
        .optional()
        .unwrap()
        .flatten();
    u64::try_from(v.unwrap_or(0)).unwrap()
}

/// Checks what the item holds at `now` against its limits.
fn check_invariants(c: &Connection, item: &LicenseItem, now: i64) -> Result<(), TestCaseError> {
    let allowance = device_allowance(item.quantity, item.grace_percent);
    let active = scalar(
        c,
        "SELECT COUNT(*) FROM devices WHERE item_id = 'q' AND active_until > ?1",
        now,
    );
    let units = scalar(
        c,
        "SELECT SUM(units) FROM devices WHERE item_id = 'q' AND active_until > ?1",
        now,
    );
    match item.license_type {
        LicenseType::PerDevice | LicenseType::PerActiveDevice | LicenseType::PerUsage => {
            if item.license_type != LicenseType::PerUsage {
                prop_assert!(
                    active <= allowance,
                    "{active} devices hold places of {allowance}"
                );
            }
        }
        LicenseType::ConcurrentDevice
        | LicenseType::ConcurrentInstance
        | LicenseType::PerInstance => {
            prop_assert!(units <= allowance, "{units} units held of {allowance}");
            let exceptions = scalar(
                c,
                "SELECT SUM(excess) FROM exceptions WHERE item_id = 'q' AND ?1 = ?1",
                now,
            );
            prop_assert!(exceptions <= exception_allowance(item));
        }
        LicenseType::PerDomain => {
            let domains = scalar(
                c,
                "SELECT COUNT(DISTINCT domain) FROM devices WHERE item_id = 'q' AND active_until > ?1",
                now,
            );
            prop_assert!(
                domains <= item.quantity,
                "{domains} domains of {}",
                item.quantity
            );
        }
    }
    Ok(())
}

/// The maintained place counters equal a count of the registrations they cover.
fn check_counters(c: &Connection) -> Result<(), TestCaseError> {
    use rusqlite::OptionalExtension;
    let row: Option<(i64, i64, i64)> = c
        .query_row(
            "SELECT held, held_units, swept_until FROM item_places WHERE item_id = 'q'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .unwrap();
    if let Some((held, units, swept_until)) = row {
        let counted = scalar(
            c,
            "SELECT COUNT(*) FROM devices WHERE item_id = 'q' AND active_until > ?1",
            swept_until,
        );
        let counted_units = scalar(
            c,
            "SELECT SUM(units) FROM devices WHERE item_id = 'q' AND active_until > ?1",
            swept_until,
        );
        prop_assert_eq!(u64::try_from(held).unwrap(), counted, "held devices");
        prop_assert_eq!(u64::try_from(units).unwrap(), counted_units, "held units");
    }
    Ok(())
}

fn run(license_type: LicenseType, grace: u8, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    let store = SqliteStore::open(&path).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let item = item(license_type, grace);
    rt.block_on(store.import_license(new_license("L", "acme", vec![item.clone()])))
        .unwrap();
    let reader = Connection::open(&path).unwrap();
    let mut now = NOW;
    // Per device: until when each admitted device holds its place, to check it is kept.
    let mut held: HashMap<u8, i64> = HashMap::new();
    let mut report_id = 0u64;
    for op in ops {
        match op {
            Op::Authorize {
                device,
                instances,
                domain,
            } => {
                let used_before = scalar(
                    &reader,
                    "SELECT used FROM item_usage WHERE item_id = 'q' AND ?1 = ?1",
                    now,
                );
                let decision = rt
                    .block_on(store.admit_device(AdmitRequest {
                        device_uuid: format!("dev-{device}"),
                        handshake_code: "acme-default".into(),
                        friendly_name: None,
                        candidates: vec![item.clone()],
                        ask: Ask {
                            instances: u64::from(instances),
                            domain: Some(format!("d{domain}.example")),
                        },
                        now,
                    }))
                    .unwrap()
                    .decision;
                let admitted = matches!(decision, Decision::Admit { .. });
                if license_type == LicenseType::PerUsage {
                    prop_assert_eq!(
                        admitted,
                        used_before < usage_limit(&item),
                        "used {}",
                        used_before
                    );
                }
                if license_type == LicenseType::PerDevice {
                    if held.get(&device).is_some_and(|until| *until > now) {
                        prop_assert!(admitted, "a known device lost its place");
                    }
                    if let Decision::Admit { active_until, .. } = decision {
                        held.insert(device, active_until);
                    }
                }
            }
            Op::Report { device, count } => {
                report_id += 1;
                rt.block_on(store.record_reports(ReportBatch {
                    device_uuid: format!("dev-{device}"),
                    handshake_code: "acme-default".into(),
                    reports: vec![ReportRow {
                        report_id: format!("r{report_id}"),
                        slice: now / 180,
                        counts: BTreeMap::from([("scan".to_string(), u64::from(count))]),
                    }],
                    received_at: now,
                }))
                .unwrap();
            }
            Op::Advance { seconds } => now += i64::from(seconds),
            Op::Unregister { device } => {
                rt.block_on(store.unregister_device(&format!("dev-{device}")))
                    .unwrap();
                held.remove(&device);
            }
        }
        check_counters(&reader)?;
        check_invariants(&reader, &item, now)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn quotas_hold_for_every_license_type(
        type_index in 0usize..LicenseType::ALL.len(),
        grace in prop_oneof![Just(0u8), Just(10u8), Just(34u8)],
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(LicenseType::ALL[type_index], grace, ops)?;
    }
}
