//! Rows for store tests: the one place they build a `LicenseItem`, a license, an admission
//! request or a report batch. Cases adjust what their rule looks at.

use std::collections::BTreeMap;

use tally_core::admission::{Ask, Decision};
use tally_proto::UnixSeconds;
use tally_proto::license::{
    ActiveWindow, LICENSE_FORMAT, License, LicenseItem, LicenseType, Organization, VersionRange,
};
use tally_store::{
    AdmitRequest, DailyUsage, NewLicense, ReportBatch, ReportOutcome, ReportResult, ReportRow,
    Store,
};

/// The tests' present: a UTC midnight (and so the start of a 3-minute slice).
pub const NOW: UnixSeconds = 1_780_272_000;

/// One day in seconds.
pub const DAY: i64 = 86_400;

/// A per-device item of product `scanner`: `quantity` places, no grace, a 24-hour window, valid
/// from just before [`NOW`] for about eleven days.
pub fn item(id: &str, quantity: u64) -> LicenseItem {
    item_of(id, LicenseType::PerDevice, quantity)
}

/// [`item`] counted the way `license_type` counts.
pub fn item_of(id: &str, license_type: LicenseType, quantity: u64) -> LicenseItem {
    LicenseItem {
        id: id.into(),
        product: "scanner".into(),
        versions: None,
        modules: vec![],
        license_type,
        quantity,
        start: NOW - 10,
        end: NOW + 1_000_000,
        grace_percent: 0,
        active_window: ActiveWindow::Hours24,
        metric: None,
        max_offline_days: None,
        grace_days: None,
    }
}

/// A per-usage item with every optional field set, to check that items are stored exactly.
pub fn detailed_item(id: &str) -> LicenseItem {
    LicenseItem {
        product: "scanner-pro".into(),
        versions: Some(VersionRange {
            min_major: 2,
            max_major: 5,
        }),
        modules: vec!["qr".into(), "pdf417".into()],
        start: NOW - 100,
        end: NOW + 365 * DAY,
        metric: Some("scan".into()),
        max_offline_days: Some(30),
        grace_days: Some(14),
        ..item_of(id, LicenseType::PerUsage, 12_345)
            .grace(5)
            .window(ActiveWindow::Days90)
    }
}

/// Builder-style changes to a fixture item.
pub trait Adjust {
    /// Grace in percent of the quantity.
    fn grace(self, percent: u8) -> Self;
    /// How long a registration lasts after the last contact.
    fn window(self, window: ActiveWindow) -> Self;
    /// The end of the item's validity.
    fn ending(self, end: UnixSeconds) -> Self;
    /// The usage feature a per-usage item counts.
    fn metric(self, feature: &str) -> Self;
}

impl Adjust for LicenseItem {
    fn grace(self, percent: u8) -> Self {
        LicenseItem {
            grace_percent: percent,
            ..self
        }
    }

    fn window(self, window: ActiveWindow) -> Self {
        LicenseItem {
            active_window: window,
            ..self
        }
    }

    fn ending(self, end: UnixSeconds) -> Self {
        LicenseItem { end, ..self }
    }

    fn metric(self, feature: &str) -> Self {
        LicenseItem {
            metric: Some(feature.into()),
            ..self
        }
    }
}

/// License `id` of organization `org` (named `org`) with `items`, imported at [`NOW`]; its
/// default handshake code is `{org}-default`.
pub fn new_license(id: &str, org: &str, items: Vec<LicenseItem>) -> NewLicense {
    NewLicense {
        license: License {
            format: LICENSE_FORMAT.into(),
            license_id: id.into(),
            organization: Organization {
                id: org.into(),
                name: org.into(),
            },
            alias: id.into(),
            issued_at: NOW,
            items,
        },
        activated_text: format!("text of {id}"),
        default_code: format!("{org}-default"),
        imported_at: NOW,
    }
}

/// `device` asks for a place on `acme-default` at `now`, with one instance and no domain.
pub fn admit(device: &str, candidates: Vec<LicenseItem>, now: UnixSeconds) -> AdmitRequest {
    AdmitRequest {
        device_uuid: device.into(),
        handshake_code: "acme-default".into(),
        friendly_name: None,
        candidates,
        ask: Ask::default(),
        now,
    }
}

/// [`admit`] declaring `instances` running instances and `domain`.
pub fn admit_asking(
    device: &str,
    candidates: Vec<LicenseItem>,
    instances: u64,
    domain: Option<&str>,
    now: UnixSeconds,
) -> AdmitRequest {
    AdmitRequest {
        ask: Ask {
            instances,
            domain: domain.map(str::to_owned),
        },
        ..admit(device, candidates, now)
    }
}

/// Whether the decision admitted the device.
pub fn admitted(decision: &Decision) -> bool {
    matches!(decision, Decision::Admit { .. })
}

/// Imports a per-device license of `org` (item `{org}-item`, 100 places) and registers `devices`
/// on its default code at [`NOW`], so that they may report usage.
pub async fn registered(store: &dyn Store, org: &str, devices: &[&str]) {
    let held = item(&format!("{org}-item"), 100);
    store
        .import_license(new_license(&format!("L-{org}"), org, vec![held.clone()]))
        .await
        .unwrap();
    for device in devices {
        let mut request = admit(device, vec![held.clone()], NOW);
        request.handshake_code = format!("{org}-default");
        let admission = store.admit_device(request).await.unwrap();
        assert!(admitted(&admission.decision), "{device}: {admission:?}");
    }
}

/// The outcome of a batch the store recorded.
pub fn recorded(result: ReportResult) -> ReportOutcome {
    match result {
        ReportResult::Recorded(outcome) => outcome,
        ReportResult::NoLivePlace => panic!("the device held no live place"),
    }
}

/// A test report: id, slice and `(feature, count)` pairs.
pub type Report<'a> = (&'a str, i64, &'a [(&'a str, u64)]);

/// A batch of `reports` from `device` on `acme-default`, received at `at`.
pub fn batch(device: &str, reports: &[Report<'_>], at: UnixSeconds) -> ReportBatch {
    ReportBatch {
        device_uuid: device.into(),
        handshake_code: "acme-default".into(),
        reports: reports
            .iter()
            .map(|(id, slice, counts)| ReportRow {
                report_id: id.to_string(),
                slice: *slice,
                counts: counts
                    .iter()
                    .map(|(f, n)| (f.to_string(), *n))
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect(),
        received_at: at,
    }
}

/// Daily usage rows as `(day, code, feature, count)`, to compare whole answers.
pub fn daily(rows: &[DailyUsage]) -> Vec<(i64, &str, &str, u64)> {
    rows.iter()
        .map(|r| {
            (
                r.day,
                r.handshake_code.as_str(),
                r.feature.as_str(),
                r.count,
            )
        })
        .collect()
}

/// `used` of every item, by id, as the store counts it at `now`.
pub async fn used_at(store: &dyn Store, now: UnixSeconds) -> BTreeMap<String, u64> {
    store
        .items(now)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.item.id, i.used))
        .collect()
}
