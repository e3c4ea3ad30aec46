//! Usage reports: exactly-once counting (also under concurrency), days, hours, items and
//! filters, charging per-usage items, and reports as contacts.

use std::collections::BTreeSet;
use std::sync::Arc;

use tally_core::admission::{Decision, Refusal};
use tally_proto::license::{ActiveWindow, LicenseType};
use tally_proto::slice::SLICE_SECONDS;
use tally_store::{ItemHourlyUsage, ReportResult, Store, StoredItem, UsageFilter};

use crate::fixtures::{
    Adjust, DAY, NOW, admit, batch, daily, item, item_of, new_license, recorded, registered,
    used_at,
};

pub async fn reports_count_once_per_id(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    let slice = NOW / SLICE_SECONDS;
    let counts: &[(&str, u64)] = &[("scan", 2), ("page", 1)];
    let first = recorded(
        store
            .record_reports(batch(
                "d1",
                &[("r1", slice, counts), ("r2", slice, counts)],
                NOW,
            ))
            .await
            .unwrap(),
    );
    assert_eq!(first.accepted, ["r1", "r2"]);
    assert!(first.duplicates.is_empty());
    let second = recorded(
        store
            .record_reports(batch(
                "d1",
                &[("r2", slice, counts), ("r3", slice, counts)],
                NOW,
            ))
            .await
            .unwrap(),
    );
    assert_eq!(
        (second.accepted.as_slice(), second.duplicates.as_slice()),
        (&["r3".to_string()][..], &["r2".to_string()][..])
    );
    let day = NOW / DAY;
    let rows = store
        .usage_by_day(UsageFilter {
            from_day: Some(day),
            to_day: Some(day),
            handshake_code: None,
        })
        .await
        .unwrap();
    let scan = rows.iter().find(|r| r.feature == "scan").unwrap();
    assert_eq!((scan.day, scan.count), (day, 6));
    let none = store
        .usage_by_day(UsageFilter {
            from_day: Some(day + 1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    let other = store
        .usage_by_day(UsageFilter {
            handshake_code: Some("x".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.is_empty());
}

/// A batch that carries the same report id twice counts it once.
pub async fn a_report_repeated_within_one_batch_counts_once(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    let slice = NOW / SLICE_SECONDS;
    let outcome = recorded(
        store
            .record_reports(batch(
                "d1",
                &[("r1", slice, &[("scan", 4)]), ("r1", slice, &[("scan", 4)])],
                NOW,
            ))
            .await
            .unwrap(),
    );
    assert_eq!(
        (outcome.accepted.as_slice(), outcome.duplicates.as_slice()),
        (&["r1".to_string()][..], &["r1".to_string()][..])
    );
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(daily(&rows), [(NOW / DAY, "acme-default", "scan", 4)]);
}

pub async fn the_same_report_sent_concurrently_counts_once(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    let slice = NOW / SLICE_SECONDS;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
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

/// Batches that share report ids, sent at once: every id is accepted by exactly one of them.
pub async fn overlapping_batches_sent_concurrently_count_each_report_once(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1", "d2"]).await;
    let slice = NOW / SLICE_SECONDS;
    // Batch i carries r{i} and r{i+1}: 40 batches, 41 reports, each counting 1 scan.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            let device = if i % 2 == 0 { "d1" } else { "d2" };
            let (a, b) = (format!("r{i}"), format!("r{}", i + 1));
            tokio::spawn(async move {
                let reports = [
                    (a.as_str(), slice, &[("scan", 1)][..]),
                    (b.as_str(), slice, &[("scan", 1)][..]),
                ];
                recorded(
                    store
                        .record_reports(batch(device, &reports, NOW))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for t in tasks {
        let outcome = t.await.unwrap();
        assert_eq!(outcome.accepted.len() + outcome.duplicates.len(), 2);
        accepted.extend(outcome.accepted);
    }
    let unique: BTreeSet<&String> = accepted.iter().collect();
    assert_eq!((accepted.len(), unique.len()), (41, 41));
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(daily(&rows), [(NOW / DAY, "acme-default", "scan", 41)]);
}

pub async fn counts_land_in_their_day_and_feature_and_filters_apply(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    registered(&*store, "other", &["d2"]).await;
    let day = NOW.div_euclid(DAY);
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
    let hours: Vec<(i64, &str, &str, u64)> = hours
        .iter()
        .map(|h| {
            (
                h.hour,
                h.handshake_code.as_str(),
                h.feature.as_str(),
                h.count,
            )
        })
        .collect();
    assert_eq!(
        hours,
        [
            (day * 24, "acme-default", "page", 1),
            (day * 24, "acme-default", "scan", 2),
            (day * 24 + 23, "acme-default", "scan", 3)
        ]
    );
}

pub async fn days_before_the_epoch_are_floored(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    store
        .record_reports(batch("d1", &[("r1", -1, &[("scan", 1)])], NOW))
        .await
        .unwrap();
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(daily(&rows), [(-1, "acme-default", "scan", 1)]);
    let hours = store.usage_by_hour(UsageFilter::default()).await.unwrap();
    assert_eq!(
        hours.iter().map(|h| h.hour).collect::<Vec<_>>(),
        [-1],
        "the hour before the epoch"
    );
}

/// Usage per item and hour goes to the item the reporting device holds on the code; the item
/// filter narrows to one item, the days filter to those days.
pub async fn usage_per_item_and_hour_goes_to_the_item_the_device_holds(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    registered(&*store, "other", &["d2"]).await;
    let slice = NOW / SLICE_SECONDS;
    let hour = NOW / 3600;
    store
        .record_reports(batch(
            "d1",
            &[
                ("r1", slice, &[("scan", 2), ("page", 1)]),
                ("r2", slice + 20, &[("scan", 3)]),
            ],
            NOW,
        ))
        .await
        .unwrap();
    let mut other = batch("d2", &[("r3", slice, &[("scan", 5)])], NOW);
    other.handshake_code = "other-default".into();
    store.record_reports(other).await.unwrap();
    let rows = |rows: Vec<ItemHourlyUsage>| -> Vec<(i64, String, String, u64)> {
        rows.into_iter()
            .map(|r| (r.hour, r.item_id, r.feature, r.count))
            .collect()
    };
    let all = store
        .usage_by_item_hour(UsageFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(
        rows(all),
        [
            (hour, "acme-item".into(), "page".into(), 1),
            (hour, "acme-item".into(), "scan".into(), 2),
            (hour, "other-item".into(), "scan".into(), 5),
            (hour + 1, "acme-item".into(), "scan".into(), 3),
        ]
    );
    // The handshake code of the filter is ignored; the item narrows.
    let acme = store
        .usage_by_item_hour(
            UsageFilter {
                handshake_code: Some("other-default".into()),
                ..Default::default()
            },
            Some("acme-item".into()),
        )
        .await
        .unwrap();
    assert_eq!(rows(acme).len(), 3);
    let day = NOW / DAY;
    let next_day = store
        .usage_by_item_hour(
            UsageFilter {
                from_day: Some(day + 1),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(next_day.is_empty());
}

pub async fn huge_counts_saturate_instead_of_breaking_the_counters(store: Arc<dyn Store>) {
    let metered = item_of("m", LicenseType::PerUsage, 10);
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
    let slice = NOW / SLICE_SECONDS;
    for id in ["r1", "r2", "r3"] {
        store
            .record_reports(batch("d1", &[(id, slice, &[("scan", big)])], NOW))
            .await
            .unwrap();
    }
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(rows[0].count, i64::MAX as u64);
    let hours = store.usage_by_hour(UsageFilter::default()).await.unwrap();
    assert_eq!(hours[0].count, i64::MAX as u64);
    let items = store.items(NOW).await.unwrap();
    assert_eq!(items[0].used, i64::MAX as u64);
    let refused = store
        .admit_device(admit("d1", vec![metered], NOW + 1))
        .await
        .unwrap();
    assert_eq!(refused.decision, Decision::Refuse(Refusal::UsageQuota));
}

pub async fn usage_is_charged_to_the_per_usage_item_the_device_holds(store: Arc<dyn Store>) {
    let long = item_of("long", LicenseType::PerUsage, 1000).window(ActiveWindow::Days365);
    let short = item_of("short", LicenseType::PerUsage, 1000);
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
    let slice = NOW / SLICE_SECONDS;
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
    let per_item = store
        .usage_by_item_hour(UsageFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(
        per_item
            .iter()
            .map(|r| (r.item_id.as_str(), r.count))
            .collect::<Vec<_>>(),
        [("short", 3)],
        "the statistics per item follow the same item"
    );
    // Days later the 24-hour registration has lapsed; the one still held is charged.
    let later = NOW + 3 * DAY;
    store
        .record_reports(batch(
            "d1",
            &[("r4", later / SLICE_SECONDS, &[("scan", 5)])],
            later,
        ))
        .await
        .unwrap();
    let mut after = used(store.items(later).await.unwrap());
    after.sort();
    assert_eq!(after, [("long".into(), 5), ("short".into(), 3)]);
}

/// A per-usage item counts its metric, or without one every top-level feature (no `.`).
pub async fn only_the_counted_features_are_charged(store: Arc<dyn Store>) {
    let scans = item_of("scans", LicenseType::PerUsage, 1000).metric("scan");
    let everything = item_of("all", LicenseType::PerUsage, 1000);
    store
        .import_license(new_license(
            "L1",
            "acme",
            vec![scans.clone(), everything.clone()],
        ))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![scans], NOW))
        .await
        .unwrap();
    store
        .admit_device(admit("d2", vec![everything], NOW))
        .await
        .unwrap();
    let slice = NOW / SLICE_SECONDS;
    let counts: &[(&str, u64)] = &[("scan", 2), ("page", 3), ("scan.color", 100)];
    for (device, id) in [("d1", "r1"), ("d2", "r2")] {
        store
            .record_reports(batch(device, &[(id, slice, counts)], NOW))
            .await
            .unwrap();
    }
    let used = used_at(&*store, NOW).await;
    assert_eq!((used["scans"], used["all"]), (2, 5));
    // Every feature still shows in the statistics.
    let rows = store.usage_by_day(UsageFilter::default()).await.unwrap();
    assert_eq!(
        daily(&rows),
        [
            (NOW / DAY, "acme-default", "page", 6),
            (NOW / DAY, "acme-default", "scan", 4),
            (NOW / DAY, "acme-default", "scan.color", 200),
        ]
    );
}

pub async fn a_device_without_a_live_place_on_the_code_records_nothing(store: Arc<dyn Store>) {
    registered(&*store, "acme", &["d1"]).await;
    let slice = NOW / SLICE_SECONDS;
    for (device, code) in [("stranger", "acme-default"), ("d1", "another-code")] {
        let mut b = batch(device, &[("r1", slice, &[("scan", 1_000_000)])], NOW);
        b.handshake_code = code.into();
        assert_eq!(
            store.record_reports(b).await.unwrap(),
            ReportResult::NoLivePlace
        );
    }
    // The 24-hour registration of d1 lapses: its reports are refused from then on.
    let later = NOW + DAY + 1;
    assert_eq!(
        store
            .record_reports(batch(
                "d1",
                &[("r2", later / SLICE_SECONDS, &[("scan", 1)])],
                later
            ))
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
    // A refused report id was not recorded: it counts when it comes with a live place.
    let fresh = recorded(
        store
            .record_reports(batch(
                "d1",
                &[("r3", slice, &[("scan", 2)]), ("r1", slice, &[("scan", 1)])],
                NOW,
            ))
            .await
            .unwrap(),
    );
    assert_eq!(fresh.accepted, ["r3", "r1"]);
}

/// A report is a contact: it renews the places the device still holds on the code (a seat to the
/// end of the next slice, a registration one window, a day place not at all) and moves its last
/// contact; a lapsed place stays lapsed.
pub async fn a_report_renews_live_places_and_never_revives_lapsed_ones(store: Arc<dyn Store>) {
    let per_device = item("pd", 10);
    let seat = item_of("cd", LicenseType::ConcurrentDevice, 10);
    let day = item_of("ad", LicenseType::PerActiveDevice, 10);
    store
        .import_license(new_license(
            "L1",
            "acme",
            vec![per_device.clone(), seat.clone(), day.clone()],
        ))
        .await
        .unwrap();
    for (device, item) in [("dp", &per_device), ("dc", &seat), ("da", &day)] {
        store
            .admit_device(admit(device, vec![item.clone()], NOW))
            .await
            .unwrap();
    }
    let at = NOW + 300;
    for (n, device) in ["dp", "dc", "da"].into_iter().enumerate() {
        recorded(
            store
                .record_reports(batch(
                    device,
                    &[(&format!("r{n}"), at / SLICE_SECONDS, &[("scan", 1)])],
                    at,
                ))
                .await
                .unwrap(),
        );
    }
    let held = |devices: Vec<tally_store::DeviceRow>| -> Vec<(String, i64, i64, i64)> {
        let mut rows: Vec<_> = devices
            .into_iter()
            .map(|d| (d.device_uuid, d.first_seen, d.last_seen, d.active_until))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        held(store.devices().await.unwrap()),
        [
            ("da".into(), NOW, at, NOW + DAY),
            // The slice of `at` is the second after NOW's; its seat lasts one more slice.
            ("dc".into(), NOW, at, NOW + 3 * SLICE_SECONDS),
            ("dp".into(), NOW, at, at + DAY),
        ]
    );
    // Long after: every place has lapsed, and a report neither counts nor revives one.
    let late = NOW + 3 * DAY;
    assert_eq!(
        store
            .record_reports(batch(
                "dp",
                &[("late", late / SLICE_SECONDS, &[("scan", 1)])],
                late
            ))
            .await
            .unwrap(),
        ReportResult::NoLivePlace
    );
    let rows = held(store.devices().await.unwrap());
    assert_eq!(rows[2], ("dp".into(), NOW, at, at + DAY));
}

pub async fn the_reply_names_a_per_usage_item_once_it_is_used_up(store: Arc<dyn Store>) {
    let metered = item_of("m", LicenseType::PerUsage, 100).grace(5);
    store
        .import_license(new_license("L1", "acme", vec![metered.clone()]))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![metered], NOW))
        .await
        .unwrap();
    let slice = NOW / SLICE_SECONDS;
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
    assert_eq!(used_at(&*store, NOW).await["m"], 108);
}
