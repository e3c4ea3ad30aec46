//! Admission: the quota of every license type, several candidates, and simultaneous requests.

use std::sync::Arc;

use tally_core::admission::{Decision, Refusal};
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::SLICE_SECONDS;
use tally_store::{Admission, AdmitRequest, DeviceRow, Store};

use crate::fixtures::{
    Adjust, DAY, NOW, admit, admit_asking, admitted, batch, item, item_of, new_license, recorded,
    used_at,
};

/// Imports `items` as license `L1` of `acme` (default code `acme-default`).
async fn import(store: &dyn Store, items: Vec<LicenseItem>) {
    store
        .import_license(new_license("L1", "acme", items))
        .await
        .unwrap();
}

async fn decide(store: &dyn Store, request: AdmitRequest) -> Decision {
    store.admit_device(request).await.unwrap().decision
}

/// The registration of `device` on `item`.
async fn registration(store: &dyn Store, device: &str, item: &str) -> DeviceRow {
    store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.device_uuid == device && d.item_id == item)
        .unwrap_or_else(|| panic!("{device} holds no registration on {item}"))
}

pub async fn per_device_places_fill_lapse_and_stay_with_known_devices(store: Arc<dyn Store>) {
    import(&*store, vec![item("a", 3)]).await;
    for d in ["d1", "d2", "d3"] {
        let a = store
            .admit_device(admit(d, vec![item("a", 3)], NOW))
            .await
            .unwrap();
        assert!(matches!(a.decision, Decision::Admit { index: 0, .. }));
    }
    let full = store
        .admit_device(admit("d4", vec![item("a", 3)], NOW))
        .await
        .unwrap();
    assert_eq!(full.decision, Decision::Refuse(Refusal::DeviceQuota));
    let known = store
        .admit_device(admit("d1", vec![item("a", 3)], NOW + 10))
        .await
        .unwrap();
    assert_eq!(
        known.decision,
        Decision::Admit {
            index: 0,
            active_until: NOW + 10 + DAY,
            units: 1,
            exception: 0
        }
    );
    assert_eq!(used_at(&*store, NOW + 10).await["a"], 3);
    // d2 and d3 lapse after 24 h without contact; d1 was refreshed 10 s later.
    let later = store
        .admit_device(admit("d4", vec![item("a", 3)], NOW + DAY))
        .await
        .unwrap();
    assert!(admitted(&later.decision));
    assert_eq!(store.items(NOW + DAY).await.unwrap()[0].used, 2);
}

/// Grace adds `round(quantity × percent / 100)` places for new devices.
pub async fn grace_adds_rounded_places_beyond_the_quantity(store: Arc<dyn Store>) {
    // 5 + round(0.5) = 6 places; 4 + round(0.4) = 4.
    let (rounded_up, rounded_down) = (item("up", 5).grace(10), item("down", 4).grace(10));
    import(&*store, vec![rounded_up.clone(), rounded_down.clone()]).await;
    for (item, places) in [(rounded_up, 6), (rounded_down, 4)] {
        for n in 0..places {
            let d = decide(
                &*store,
                admit(&format!("{}-{n}", item.id), vec![item.clone()], NOW),
            )
            .await;
            assert!(admitted(&d), "{} place {n}: {d:?}", item.id);
        }
        assert_eq!(
            decide(&*store, admit("one-too-many", vec![item.clone()], NOW)).await,
            Decision::Refuse(Refusal::DeviceQuota),
            "{}",
            item.id
        );
        assert_eq!(used_at(&*store, NOW).await[&item.id], places);
    }
}

/// A per-active-device place is one device per UTC day: it holds until midnight, and the next
/// day another device may take it.
pub async fn per_active_device_counts_one_device_per_day(store: Arc<dyn Store>) {
    let daily = item_of("day", LicenseType::PerActiveDevice, 1);
    import(&*store, vec![daily.clone()]).await;
    let ask = |d: &str, now| admit(d, vec![daily.clone()], now);
    assert_eq!(
        decide(&*store, ask("d1", NOW + 60)).await,
        Decision::Admit {
            index: 0,
            active_until: NOW + DAY,
            units: 1,
            exception: 0
        },
        "held to the end of the UTC day"
    );
    assert_eq!(
        decide(&*store, ask("d2", NOW + 100)).await,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert!(
        admitted(&decide(&*store, ask("d1", NOW + 200)).await),
        "the day's device comes back"
    );
    assert_eq!(used_at(&*store, NOW + 200).await["day"], 1);
    // The next day the place is free again: d2 takes it, and d1 is the one refused.
    let tomorrow = NOW + DAY + 10;
    assert_eq!(used_at(&*store, tomorrow).await["day"], 0);
    assert!(admitted(&decide(&*store, ask("d2", tomorrow)).await));
    assert_eq!(
        decide(&*store, ask("d1", tomorrow + 1)).await,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert_eq!(used_at(&*store, tomorrow + 1).await["day"], 1);
}

/// Concurrent seats: up to the quantity freely, beyond it up to the grace as recorded
/// exceptions, never further; a seat lasts to the end of the next slice.
pub async fn concurrent_device_seats_allow_bounded_overuse(store: Arc<dyn Store>) {
    // 2 seats + round(2 × 50 %) = 3 with exceptions.
    let seats = item_of("seats", LicenseType::ConcurrentDevice, 2).grace(50);
    import(&*store, vec![seats.clone()]).await;
    let ask = |d: &str, now| admit(d, vec![seats.clone()], now);
    let seat_end = NOW + 2 * SLICE_SECONDS;
    for (d, exception) in [("d1", 0), ("d2", 0), ("d3", 1)] {
        assert_eq!(
            decide(&*store, ask(d, NOW)).await,
            Decision::Admit {
                index: 0,
                active_until: seat_end,
                units: 1,
                exception
            },
            "{d}"
        );
    }
    assert_eq!(
        decide(&*store, ask("d4", NOW + 1)).await,
        Decision::Refuse(Refusal::Seats)
    );
    assert!(
        admitted(&decide(&*store, ask("d1", NOW + 10)).await),
        "a device renews the seat it holds"
    );
    assert_eq!(used_at(&*store, NOW + 10).await["seats"], 3);
    // The seats lapse at the end of the next slice: d4 gets one within the quantity.
    assert_eq!(used_at(&*store, seat_end).await["seats"], 0);
    assert_eq!(
        decide(&*store, ask("d4", seat_end)).await,
        Decision::Admit {
            index: 0,
            active_until: seat_end + 2 * SLICE_SECONDS,
            units: 1,
            exception: 0
        }
    );
    assert_eq!(used_at(&*store, seat_end).await["seats"], 1);
}

/// Overuse beyond the quantity is allowed for `quantity × 1000` exception units per allowance
/// year (counted from the item's start), then refused until the next year.
pub async fn concurrent_overuse_is_limited_per_allowance_year(store: Arc<dyn Store>) {
    // One instance, grace 1 + round(2.5) = 4 instances: asking 4 is an overuse of 3.
    let year = 365 * DAY;
    let seats = item_of("seats", LicenseType::ConcurrentInstance, 1)
        .grace(250)
        .ending(NOW + 2 * year);
    import(&*store, vec![seats.clone()]).await;
    // Every step two slices later, when the previous step's seat has lapsed.
    let step = |n: i64| NOW + n * 2 * SLICE_SECONDS;
    let ask = |n: i64, instances| {
        admit_asking(
            &format!("d{n}"),
            vec![seats.clone()],
            instances,
            None,
            step(n),
        )
    };
    // 333 overuses of 3 spend 999 of the 1000.
    for n in 0..333 {
        let d = decide(&*store, ask(n, 4)).await;
        assert!(
            matches!(d, Decision::Admit { exception: 3, .. }),
            "step {n}: {d:?}"
        );
    }
    assert_eq!(
        decide(&*store, ask(333, 4)).await,
        Decision::Refuse(Refusal::Seats),
        "3 more would exceed the allowance"
    );
    assert!(matches!(
        decide(&*store, ask(333, 2)).await,
        Decision::Admit { exception: 1, .. }
    ));
    assert!(
        matches!(
            decide(&*store, ask(334, 1)).await,
            Decision::Admit { exception: 0, .. }
        ),
        "within the quantity needs no allowance"
    );
    assert_eq!(
        decide(&*store, ask(335, 2)).await,
        Decision::Refuse(Refusal::Seats)
    );
    // A new allowance year starts a year after the item's start.
    let next_year = seats.start + year;
    let again = admit_asking("next-year", vec![seats.clone()], 4, None, next_year);
    assert!(matches!(
        decide(&*store, again).await,
        Decision::Admit { exception: 3, .. }
    ));
}

/// Concurrent instances count the instances a device declares; its own seat is not counted
/// against it when it asks again.
pub async fn concurrent_instance_counts_the_declared_instances(store: Arc<dyn Store>) {
    let seats = item_of("inst", LicenseType::ConcurrentInstance, 4);
    import(&*store, vec![seats.clone()]).await;
    let ask = |d: &str, instances, now| admit_asking(d, vec![seats.clone()], instances, None, now);
    assert!(matches!(
        decide(&*store, ask("d1", 3, NOW)).await,
        Decision::Admit {
            units: 3,
            exception: 0,
            ..
        }
    ));
    assert_eq!(
        decide(&*store, ask("d2", 2, NOW)).await,
        Decision::Refuse(Refusal::Seats)
    );
    assert!(matches!(
        decide(&*store, ask("d2", 1, NOW)).await,
        Decision::Admit { units: 1, .. }
    ));
    assert_eq!(used_at(&*store, NOW).await["inst"], 4);
    assert!(
        matches!(
            decide(&*store, ask("d1", 3, NOW + 5)).await,
            Decision::Admit { units: 3, .. }
        ),
        "d1's own instances are not another's"
    );
    assert_eq!(
        decide(&*store, ask("d1", 4, NOW + 6)).await,
        Decision::Refuse(Refusal::Seats)
    );
    assert_eq!(
        registration(&*store, "d1", "inst").await.units,
        3,
        "a refused request keeps the seat held"
    );
    assert_eq!(used_at(&*store, NOW + 6).await["inst"], 4);
}

/// Per instance: the declared instances of every active registration count, for one window.
pub async fn per_instance_counts_instances_until_they_lapse(store: Arc<dyn Store>) {
    let instances = item_of("inst", LicenseType::PerInstance, 4);
    import(&*store, vec![instances.clone()]).await;
    let ask = |d: &str, n, now| admit_asking(d, vec![instances.clone()], n, None, now);
    assert_eq!(
        decide(&*store, ask("d1", 3, NOW)).await,
        Decision::Admit {
            index: 0,
            active_until: NOW + DAY,
            units: 3,
            exception: 0
        }
    );
    assert_eq!(
        decide(&*store, ask("d2", 2, NOW)).await,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert!(admitted(&decide(&*store, ask("d2", 1, NOW)).await));
    assert_eq!(used_at(&*store, NOW).await["inst"], 4);
    assert_eq!(
        decide(&*store, ask("d3", 1, NOW + 10)).await,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    // A day later both registrations have lapsed.
    assert_eq!(used_at(&*store, NOW + DAY).await["inst"], 0);
    assert!(matches!(
        decide(&*store, ask("d3", 4, NOW + DAY)).await,
        Decision::Admit { units: 4, .. }
    ));
    assert_eq!(used_at(&*store, NOW + DAY).await["inst"], 4);
}

/// Per usage: devices are admitted while the usage counted is below quantity + grace; then every
/// device, known ones too, is refused.
pub async fn per_usage_refuses_every_device_once_used_up(store: Arc<dyn Store>) {
    let metered = item_of("m", LicenseType::PerUsage, 10);
    import(&*store, vec![metered.clone()]).await;
    let ask = |d: &str| admit(d, vec![metered.clone()], NOW);
    assert!(admitted(&decide(&*store, ask("d1")).await));
    let slice = NOW / SLICE_SECONDS;
    let first = recorded(
        store
            .record_reports(batch("d1", &[("r1", slice, &[("scan", 9)])], NOW))
            .await
            .unwrap(),
    );
    assert!(first.exhausted.is_empty());
    assert_eq!(used_at(&*store, NOW).await["m"], 9);
    assert!(admitted(&decide(&*store, ask("d2")).await), "9 of 10 used");
    let last = recorded(
        store
            .record_reports(batch("d2", &[("r2", slice, &[("scan", 1)])], NOW))
            .await
            .unwrap(),
    );
    assert_eq!(last.exhausted, ["m"]);
    assert_eq!(used_at(&*store, NOW).await["m"], 10);
    for d in ["d3", "d1", "d2"] {
        assert_eq!(
            decide(&*store, ask(d)).await,
            Decision::Refuse(Refusal::UsageQuota),
            "{d}"
        );
    }
}

/// Per domain: the distinct domains of active registrations count; a known domain is always
/// admitted, a request without a domain never.
pub async fn per_domain_counts_distinct_domains(store: Arc<dyn Store>) {
    let domains = item_of("dom", LicenseType::PerDomain, 2);
    import(&*store, vec![domains.clone()]).await;
    let ask =
        |d: &str, domain: Option<&str>, now| admit_asking(d, vec![domains.clone()], 1, domain, now);
    for (d, domain) in [
        ("d1", "a.example"),
        ("d2", "b.example"),
        ("d3", "a.example"),
    ] {
        assert!(
            admitted(&decide(&*store, ask(d, Some(domain), NOW)).await),
            "{d} on {domain}"
        );
    }
    assert_eq!(
        decide(&*store, ask("d4", Some("c.example"), NOW)).await,
        Decision::Refuse(Refusal::DomainQuota)
    );
    for domain in [None, Some("")] {
        assert_eq!(
            decide(&*store, ask("d5", domain, NOW)).await,
            Decision::Refuse(Refusal::DomainMissing),
            "{domain:?}"
        );
    }
    assert_eq!(used_at(&*store, NOW).await["dom"], 2);
    assert_eq!(
        registration(&*store, "d3", "dom").await.domain.as_deref(),
        Some("a.example")
    );
    // A day later the domains have lapsed with their registrations.
    assert!(admitted(
        &decide(&*store, ask("d4", Some("c.example"), NOW + DAY)).await
    ));
    assert_eq!(used_at(&*store, NOW + DAY).await["dom"], 1);
}

pub async fn when_the_first_candidate_is_full_the_second_serves(store: Arc<dyn Store>) {
    let (a, b) = (item("a", 1), item("b", 2));
    import(&*store, vec![a.clone(), b.clone()]).await;
    let mut indexes = Vec::new();
    for d in ["d1", "d2", "d3", "d4"] {
        let got = store
            .admit_device(admit(d, vec![a.clone(), b.clone()], NOW))
            .await
            .unwrap();
        indexes.push(match got.decision {
            Decision::Admit { index, .. } => Some(index),
            Decision::Refuse(r) => {
                assert_eq!(r, Refusal::DeviceQuota);
                None
            }
        });
    }
    assert_eq!(indexes, [Some(0), Some(1), Some(1), None]);
    let mut held: Vec<(String, String)> = store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.device_uuid, d.item_id))
        .collect();
    held.sort();
    let expected = [("d1", "a"), ("d2", "b"), ("d3", "b")].map(|(d, i)| (d.into(), i.into()));
    assert_eq!(held, expected);
    let used: Vec<(String, u64)> = used_at(&*store, NOW).await.into_iter().collect();
    assert_eq!(used, [("a".into(), 1), ("b".into(), 2)]);
}

pub async fn a_renewed_registration_keeps_its_first_contact_and_name(store: Arc<dyn Store>) {
    import(&*store, vec![item("a", 2)]).await;
    let mut named = admit("d1", vec![item("a", 2)], NOW);
    named.friendly_name = Some("Front desk".into());
    store.admit_device(named).await.unwrap();
    store
        .admit_device(admit("d2", vec![item("a", 2)], NOW + 5))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![item("a", 2)], NOW + 60))
        .await
        .unwrap();
    let devices = store.devices().await.unwrap();
    let order: Vec<&str> = devices.iter().map(|d| d.device_uuid.as_str()).collect();
    assert_eq!(order, ["d1", "d2"], "most recent contact first");
    let d1 = &devices[0];
    assert_eq!(
        (d1.first_seen, d1.last_seen, d1.friendly_name.as_deref()),
        (NOW, NOW + 60, Some("Front desk"))
    );
    assert_eq!(d1.active_until, NOW + 60 + DAY);
    assert_eq!(
        (d1.item_id.as_str(), d1.handshake_code.as_str(), d1.units),
        ("a", "acme-default", 1)
    );
}

/// Admits `devices` distinct devices on `item` at once, each from its own task (and with its own
/// domain); returns how many were admitted.
async fn admit_all_at_once(store: &Arc<dyn Store>, item: &LicenseItem, devices: usize) -> usize {
    let tasks: Vec<_> = (0..devices)
        .map(|i| {
            let store = Arc::clone(store);
            let request = admit_asking(
                &format!("{}-dev-{i}", item.id),
                vec![item.clone()],
                1,
                Some(&format!("d{i}.example")),
                NOW,
            );
            tokio::spawn(async move { store.admit_device(request).await.unwrap() })
        })
        .collect();
    let mut admitted_count = 0;
    for t in tasks {
        let Admission { decision } = t.await.unwrap();
        if admitted(&decision) {
            admitted_count += 1;
        }
    }
    admitted_count
}

pub async fn two_hundred_simultaneous_admissions_for_five_places_admit_exactly_five(
    store: Arc<dyn Store>,
) {
    let places = item("a", 5);
    import(&*store, vec![places.clone()]).await;
    assert_eq!(admit_all_at_once(&store, &places, 200).await, 5);
    assert_eq!(store.devices().await.unwrap().len(), 5);
    assert_eq!(store.device_count().await.unwrap(), 5);
    assert_eq!(used_at(&*store, NOW).await["a"], 5);
}

/// Every type that counts devices, seats, instances or domains keeps its quota of 5 under 200
/// simultaneous requests per item, all items at once.
pub async fn simultaneous_admissions_hold_every_counted_quota(store: Arc<dyn Store>) {
    let items: Vec<LicenseItem> = [
        LicenseType::PerActiveDevice,
        LicenseType::ConcurrentDevice,
        LicenseType::ConcurrentInstance,
        LicenseType::PerInstance,
        LicenseType::PerDomain,
    ]
    .into_iter()
    .map(|t| item_of(t.as_str(), t, 5))
    .collect();
    import(&*store, items.clone()).await;
    let runs: Vec<_> = items
        .iter()
        .map(|item| {
            let (store, item) = (Arc::clone(&store), item.clone());
            tokio::spawn(async move { (admit_all_at_once(&store, &item, 200).await, item.id) })
        })
        .collect();
    for run in runs {
        let (admitted_count, id) = run.await.unwrap();
        assert_eq!(admitted_count, 5, "{id}");
    }
    let devices = store.devices().await.unwrap();
    let used = used_at(&*store, NOW).await;
    for item in &items {
        let held = devices.iter().filter(|d| d.item_id == item.id).count();
        assert_eq!((held, used[&item.id]), (5, 5), "{}", item.id);
    }
}
