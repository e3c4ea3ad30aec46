//! Usage reports: days, features, filters, exactly-once counting under concurrency, charging.

use std::collections::BTreeMap;

use tally_core::admission::{Decision, Refusal};
use tally_proto::license::{ActiveWindow, LicenseType};
use tally_store::*;

use super::{NOW, admit, item, new_license, open, recorded, registered};

/// A test report: id, slice and `(feature, count)` pairs.
type Report<'a> = (&'a str, i64, &'a [(&'a str, u64)]);

fn batch(device: &str, reports: &[Report<'_>], at: i64) -> ReportBatch {
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

fn daily(rows: &[DailyUsage]) -> Vec<(i64, &str, &str, u64)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_land_in_their_day_and_feature_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    registered(&store, "other", &["d2"]).await;
    let day = NOW.div_euclid(86_400);
    let first_slice = day * 480;
    store
        .record_reports(batch(
            "d1",
            &[
                ("r1", first_slice, &[("scan", 2), ("page", 1)]),
                // The last slice of the day, and the first of the next.
                ("r2", first_slice + 479, &[("scan", 3)]),
                ("r3", first_slice + 480, &[("scan", 7)]),
            ],
            NOW,
        ))
        .await
        .unwrap();
    let mut other = batch("d2", &[("r4", first_slice, &[("scan", 100)])], NOW);
    other.handshake_code = "other-default".into();
    store.record_reports(other).await.unwrap();

    let all = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(
        daily(&all),
        [
            (day, "acme-default", "page", 1),
            (day, "acme-default", "scan", 5),
            (day, "other-default", "scan", 100),
            (day + 1, "acme-default", "scan", 7),
        ]
    );
    let next_day_only = store
        .usage_by_day(UsageFilter {
            from_day: Some(day + 1),
            to_day: Some(day + 1),
            handshake_code: None,
        })
        .await
        .unwrap();
    assert_eq!(
        daily(&next_day_only),
        [(day + 1, "acme-default", "scan", 7)]
    );
    let first_day_of_code = store
        .usage_by_day(UsageFilter {
            from_day: None,
            to_day: Some(day),
            handshake_code: Some("other-default".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        daily(&first_day_of_code),
        [(day, "other-default", "scan", 100)]
    );

    let hours = store
        .usage_by_hour(UsageFilter {
            from_day: Some(day),
            to_day: Some(day),
            handshake_code: Some("acme-default".into()),
        })
        .await
        .unwrap();
    let hours: Vec<(i64, &str, u64)> = hours
        .iter()
        .map(|h| (h.hour, h.feature.as_str(), h.count))
        .collect();
    assert_eq!(
        hours,
        [
            (day * 24, "page", 1),
            (day * 24, "scan", 2),
            (day * 24 + 23, "scan", 3)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_before_the_epoch_are_floored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    store
        .record_reports(batch("d1", &[("r1", -1, &[("scan", 1)])], NOW))
        .await
        .unwrap();
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(daily(&rows), [(-1, "acme-default", "scan", 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_report_sent_concurrently_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    let slice = NOW / 180;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                recorded(
                    store
                        .record_reports(batch("d1", &[("r1", slice, &[("scan", 4)])], NOW))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        let outcome = t.await.unwrap();
        accepted += outcome.accepted.len();
        assert_eq!(outcome.accepted.len() + outcome.duplicates.len(), 1);
    }
    assert_eq!(accepted, 1);
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_counts_saturate_instead_of_breaking_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut metered = item("m", 10);
    metered.license_type = LicenseType::PerUsage;
    store
        .import_license(new_license("L1", "acme", vec![metered.clone()]))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![metered.clone()], NOW))
        .await
        .unwrap();
    // The server accepts counts up to i64::MAX / 2; three of them overflow an i64.
    let big = i64::MAX as u64 / 2;
    let slice = NOW / 180;
    for id in ["r1", "r2", "r3"] {
        store
            .record_reports(batch("d1", &[(id, slice, &[("scan", big)])], NOW))
            .await
            .unwrap();
    }
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(rows[0].count, i64::MAX as u64);
    let items = store.items(NOW).await.unwrap();
    assert_eq!(items[0].used, i64::MAX as u64);
    let refused = store
        .admit_device(admit("d1", vec![metered], NOW + 1))
        .await
        .unwrap();
    assert_eq!(refused.decision, Decision::Refuse(Refusal::UsageQuota));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_charged_to_the_per_usage_item_the_device_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut long = item("long", 1000);
    long.license_type = LicenseType::PerUsage;
    long.active_window = ActiveWindow::Days365;
    let mut short = item("short", 1000);
    short.license_type = LicenseType::PerUsage;
    store
        .import_license(new_license("L1", "acme", vec![long.clone(), short.clone()]))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![long], NOW))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![short], NOW + 10))
        .await
        .unwrap();
    let used = |items: Vec<StoredItem>| -> Vec<(String, u64)> {
        items.into_iter().map(|i| (i.item.id, i.used)).collect()
    };
    let slice = NOW / 180;
    // Every report moves last_seen on both registrations: the charge must still follow the
    // latest admission.
    for (id, at) in [("r1", NOW + 20), ("r2", NOW + 30), ("r3", NOW + 40)] {
        store
            .record_reports(batch("d1", &[(id, slice, &[("scan", 1)])], at))
            .await
            .unwrap();
    }
    let mut now = used(store.items(NOW + 40).await.unwrap());
    now.sort();
    assert_eq!(now, [("long".into(), 0), ("short".into(), 3)]);
    // Days later the 24-hour registration has lapsed; the one still held is charged.
    let later = NOW + 3 * 86_400;
    store
        .record_reports(batch("d1", &[("r4", later / 180, &[("scan", 5)])], later))
        .await
        .unwrap();
    let mut after = used(store.items(later).await.unwrap());
    after.sort();
    assert_eq!(after, [("long".into(), 5), ("short".into(), 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_a_live_place_on_the_code_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    let slice = NOW / 180;
    for (device, code) in [("stranger", "acme-default"), ("d1", "another-code")] {
        let mut b = batch(device, &[("r1", slice, &[("scan", 1_000_000)])], NOW);
        b.handshake_code = code.into();
        assert_eq!(
            store.record_reports(b).await.unwrap(),
            ReportResult::NoLivePlace
        );
    }
    // The 24-hour registration of d1 lapses: its reports are refused from then on.
    let later = NOW + 86_400 + 1;
    assert_eq!(
        store
            .record_reports(batch("d1", &[("r2", later / 180, &[("scan", 1)])], later))
            .await
            .unwrap(),
        ReportResult::NoLivePlace
    );
    assert!(
        store
            .usage_by_day(UsageFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = recorded(
        store
            .record_reports(batch("d1", &[("r3", slice, &[("scan", 2)])], NOW))
            .await
            .unwrap(),
    );
    assert_eq!(fresh.accepted, ["r3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_names_a_per_usage_item_once_it_is_used_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut metered = item("m", 100);
    metered.license_type = LicenseType::PerUsage;
    metered.grace_percent = 5;
    store
        .import_license(new_license("L1", "acme", vec![metered.clone()]))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![metered], NOW))
        .await
        .unwrap();
    let slice = NOW / 180;
    let below = recorded(
        store
            .record_reports(batch("d1", &[("r1", slice, &[("scan", 104)])], NOW))
            .await
            .unwrap(),
    );
    assert!(
        below.exhausted.is_empty(),
        "104 of 100 + 5 % is still allowed"
    );
    let at = recorded(
        store
            .record_reports(batch("d1", &[("r2", slice, &[("scan", 1)])], NOW))
            .await
            .unwrap(),
    );
    assert_eq!(at.exhausted, ["m"]);
    // Later reports (usage counted offline before the device knew) still count, and say so.
    let after = recorded(
        store
            .record_reports(batch("d1", &[("r3", slice, &[("scan", 3)])], NOW))
            .await
            .unwrap(),
    );
    assert_eq!((after.accepted.len(), after.exhausted.len()), (1, 1));
}
