//! Random sequences of authorizations, reports, time steps and unregistrations against one
//! license item, checking through the `Store` trait after every step that no license type ever
//! gives more than it may. The conformance case runs them; a backend may run them again with
//! checks of its own tables on top (see [`play`]'s `extra`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tally_core::admission::{Ask, Decision, device_allowance, usage_limit};
use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;
use tally_store::{AdmitRequest, ReportBatch, ReportRow, Store};

use crate::fixtures::Adjust;
use crate::fixtures::{DAY, NOW, item_of, new_license};

/// One step of a scenario. Devices, instances and domains are small numbers, so that devices
/// come back and domains repeat.
#[derive(Debug, Clone)]
pub enum Op {
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

/// A random step: mostly authorizations, then reports, time steps (short ones within a slice or
/// a day, long ones past a window) and unregistrations.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 1u8..4, 0u8..5).prop_map(|(device, instances, domain)| Op::Authorize { device, instances, domain }),
        2 => (0u8..8, 0u16..40).prop_map(|(device, count)| Op::Report { device, count }),
        1 => prop_oneof![0u32..400, 0u32..200_000].prop_map(|seconds| Op::Advance { seconds }),
        1 => (0u8..8).prop_map(|device| Op::Unregister { device }),
    ]
}

/// What one run plays: an item of `license_type` with 3 units and `grace` percent, then `ops`.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub license_type: LicenseType,
    pub grace: u8,
    pub ops: Vec<Op>,
}

/// Any license type, no grace or a grace that rounds to 0 or 1 extra unit, 1 to 59 steps.
///
/// Drawn as `(type index, grace, ops)`: the shape the SQLite store's property test had, so that
/// its saved regression seeds still replay the same values.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0usize..LicenseType::ALL.len(),
        prop_oneof![Just(0u8), Just(10u8), Just(34u8)],
        proptest::collection::vec(op(), 1..60),
    )
        .prop_map(|(type_index, grace, ops)| Scenario {
            license_type: LicenseType::ALL[type_index],
            grace,
            ops,
        })
}

/// Scenarios that once failed (shrunk), played before any random one.
pub fn regressions() -> Vec<Scenario> {
    let authorize = |device, instances, domain| Op::Authorize {
        device,
        instances,
        domain,
    };
    vec![
        Scenario {
            license_type: LicenseType::PerDevice,
            grace: 0,
            ops: vec![authorize(0, 1, 0)],
        },
        Scenario {
            license_type: LicenseType::PerInstance,
            grace: 0,
            ops: vec![authorize(2, 2, 0), authorize(0, 2, 0)],
        },
    ]
}

/// The item a scenario plays on: 3 units, a 24-hour window, valid for 40 days.
pub fn scenario_item(id: &str, scenario: &Scenario) -> LicenseItem {
    item_of(id, scenario.license_type, 3)
        .grace(scenario.grace)
        .ending(NOW + 40 * DAY)
}

/// A check run after every step with the item and the time: `Err` fails the scenario.
pub type Check<'a> = dyn FnMut(&LicenseItem, UnixSeconds) -> Result<(), TestCaseError> + Send + 'a;

/// Plays `scenario` on `store`, starting at [`NOW`], under `namespace`: organization
/// `{namespace}`, item `{namespace}-q` on code `{namespace}-default`, devices
/// `{namespace}-dev-N`, so that several scenarios can share one store. After every step it
/// checks the quota through the trait, then runs `extra`.
pub async fn play(
    store: &dyn Store,
    namespace: &str,
    scenario: &Scenario,
    extra: &mut Check<'_>,
) -> Result<(), TestCaseError> {
    let item = scenario_item(&format!("{namespace}-q"), scenario);
    let code = format!("{namespace}-default");
    let device_id = |device: u8| format!("{namespace}-dev-{device}");
    store
        .import_license(new_license(
            &format!("L-{namespace}"),
            namespace,
            vec![item.clone()],
        ))
        .await
        .map_err(fail)?;
    let mut now = NOW;
    // Per device: until when each admitted device holds its place, to check it is kept.
    let mut held: HashMap<u8, UnixSeconds> = HashMap::new();
    let mut report_id = 0u64;
    for op in &scenario.ops {
        match *op {
            Op::Authorize {
                device,
                instances,
                domain,
            } => {
                let used_before = used(store, &item, now).await?;
                let decision = store
                    .admit_device(AdmitRequest {
                        device_uuid: device_id(device),
                        handshake_code: code.clone(),
                        friendly_name: None,
                        candidates: vec![item.clone()],
                        ask: Ask {
                            instances: u64::from(instances),
                            domain: Some(format!("d{domain}.example")),
                        },
                        now,
                    })
                    .await
                    .map_err(fail)?
                    .decision;
                let admitted = matches!(decision, Decision::Admit { .. });
                if item.license_type == LicenseType::PerUsage {
                    prop_assert_eq!(
                        admitted,
                        used_before < usage_limit(&item),
                        "used {}",
                        used_before
                    );
                }
                if item.license_type == LicenseType::PerDevice {
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
                store
                    .record_reports(ReportBatch {
                        device_uuid: device_id(device),
                        handshake_code: code.clone(),
                        reports: vec![ReportRow {
                            report_id: format!("{namespace}-r{report_id}"),
                            slice: slice_of(now),
                            counts: BTreeMap::from([("scan".to_string(), u64::from(count))]),
                        }],
                        received_at: now,
                    })
                    .await
                    .map_err(fail)?;
            }
            Op::Advance { seconds } => now += i64::from(seconds),
            Op::Unregister { device } => {
                store
                    .unregister_device(&device_id(device))
                    .await
                    .map_err(fail)?;
                held.remove(&device);
            }
        }
        check_quota(store, &item, now).await?;
        extra(&item, now)?;
    }
    Ok(())
}

fn fail(e: tally_store::StoreError) -> TestCaseError {
    TestCaseError::fail(format!("store error: {e}"))
}

/// `used` of `item` at `now`, as the store reports it.
async fn used(
    store: &dyn Store,
    item: &LicenseItem,
    now: UnixSeconds,
) -> Result<u64, TestCaseError> {
    let items = store.items(now).await.map_err(fail)?;
    let stored = items.into_iter().find(|i| i.item.id == item.id);
    prop_assert!(stored.is_some(), "item {} is not listed", item.id);
    Ok(stored.map_or(0, |i| i.used))
}

/// What `item` holds at `now` against its limits: the registrations holding a place
/// (`devices()`, `active_until > now`) and the item's `used`, which must agree with them.
async fn check_quota(
    store: &dyn Store,
    item: &LicenseItem,
    now: UnixSeconds,
) -> Result<(), TestCaseError> {
    let allowance = device_allowance(item.quantity, item.grace_percent);
    let live: Vec<_> = store
        .devices()
        .await
        .map_err(fail)?
        .into_iter()
        .filter(|d| d.item_id == item.id && d.active_until > now)
        .collect();
    let used = used(store, item, now).await?;
    let active = live.len() as u64;
    let units: u64 = live.iter().map(|d| d.units).sum();
    match item.license_type {
        LicenseType::PerDevice => {
            prop_assert!(
                active <= allowance,
                "{active} devices hold places of {allowance}"
            );
            prop_assert_eq!(used, active, "used counts the active devices");
        }
        LicenseType::PerActiveDevice => {
            prop_assert!(
                active <= allowance,
                "{active} devices hold places of {allowance}"
            );
            prop_assert!(used <= active, "{used} devices today, {active} active");
        }
        LicenseType::PerUsage => {}
        LicenseType::ConcurrentDevice
        | LicenseType::ConcurrentInstance
        | LicenseType::PerInstance => {
            prop_assert!(units <= allowance, "{units} units held of {allowance}");
            prop_assert_eq!(used, units, "used counts the units held");
        }
        LicenseType::PerDomain => {
            let domains: BTreeSet<&str> = live.iter().filter_map(|d| d.domain.as_deref()).collect();
            let domains = domains.len() as u64;
            prop_assert!(
                domains <= item.quantity,
                "{domains} domains of {}",
                item.quantity
            );
            prop_assert_eq!(used, domains, "used counts the active domains");
        }
    }
    Ok(())
}
