//! Places held per item: the counters a store may keep must answer as a count would, also when
//! the clock goes back; unregistering frees places; registrations are listed and paged.

use std::sync::Arc;

use tally_core::admission::{Decision, Refusal};
use tally_proto::license::LicenseType;
use tally_store::Store;

use crate::fixtures::{NOW, admit, admitted, item, item_of, new_license, used_at};

pub async fn a_clock_moved_back_never_admits_more_than_a_count_would(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 2)]))
        .await
        .unwrap();
    let ask = |d: &str, now: i64| admit(d, vec![item("a", 2)], now);
    for d in ["d1", "d2"] {
        assert!(admitted(
            &store.admit_device(ask(d, NOW)).await.unwrap().decision
        ));
    }
    // A day later both have lapsed; d3 takes a place (a store keeping counters moves them to
    // that time).
    let later = NOW + 86_400 + 1;
    assert!(admitted(
        &store.admit_device(ask("d3", later)).await.unwrap().decision
    ));
    // The clock goes back: d1 and d2 hold their places again by their rows, so d4 is refused
    // even though counters swept to `later` would only know of d3.
    assert_eq!(
        store
            .admit_device(ask("d4", NOW + 100))
            .await
            .unwrap()
            .decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert_eq!(used_at(&*store, NOW + 100).await["a"], 3);
    // Forward again, d4 fits beside d3.
    assert!(admitted(
        &store
            .admit_device(ask("d4", later + 10))
            .await
            .unwrap()
            .decision
    ));
    assert_eq!(
        store
            .admit_device(ask("d5", later + 20))
            .await
            .unwrap()
            .decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert_eq!(used_at(&*store, later + 20).await["a"], 2);
}

pub async fn unregistering_frees_the_place_for_another_device(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    let ask = |d: &str| admit(d, vec![item("a", 1)], NOW);
    assert!(admitted(
        &store.admit_device(ask("d1")).await.unwrap().decision
    ));
    assert_eq!(
        store.admit_device(ask("d2")).await.unwrap().decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert_eq!(store.unregister_device("d1").await.unwrap(), 1);
    assert_eq!(used_at(&*store, NOW).await["a"], 0);
    assert!(admitted(
        &store.admit_device(ask("d2")).await.unwrap().decision
    ));
}

/// Unregistering frees every place the device holds, on every item; a device with none frees
/// nothing.
pub async fn unregistering_frees_every_place_of_the_device(store: Arc<dyn Store>) {
    let places = item("a", 1);
    let seats = item_of("c", LicenseType::ConcurrentInstance, 2);
    store
        .import_license(new_license(
            "L1",
            "acme",
            vec![places.clone(), seats.clone()],
        ))
        .await
        .unwrap();
    let mut on_seats = admit("d1", vec![seats.clone()], NOW);
    on_seats.ask.instances = 2;
    for request in [admit("d1", vec![places.clone()], NOW), on_seats] {
        assert!(admitted(
            &store.admit_device(request).await.unwrap().decision
        ));
    }
    assert_eq!(store.device_count().await.unwrap(), 2);
    assert_eq!(store.unregister_device("d1").await.unwrap(), 2);
    assert!(store.devices().await.unwrap().is_empty());
    assert_eq!(store.device_count().await.unwrap(), 0);
    let used = used_at(&*store, NOW).await;
    assert_eq!((used["a"], used["c"]), (0, 0));
    assert_eq!(store.unregister_device("d1").await.unwrap(), 0);
    assert_eq!(store.unregister_device("ghost").await.unwrap(), 0);
    let mut both = admit("d2", vec![seats.clone()], NOW + 1);
    both.ask.instances = 2;
    for request in [admit("d2", vec![places], NOW + 1), both] {
        assert!(admitted(
            &store.admit_device(request).await.unwrap().decision
        ));
    }
}

/// Registrations are listed most recently seen first, a page at a time, and counted.
pub async fn registrations_are_paged_most_recently_seen_first(store: Arc<dyn Store>) {
    let (a, b) = (item("a", 10), item("b", 10));
    store
        .import_license(new_license("L1", "acme", vec![a.clone(), b.clone()]))
        .await
        .unwrap();
    for n in 0..5 {
        store
            .admit_device(admit(&format!("d{n}"), vec![a.clone()], NOW + n))
            .await
            .unwrap();
    }
    // A second registration of d0, on another item, seen last.
    store
        .admit_device(admit("d0", vec![b], NOW + 5))
        .await
        .unwrap();
    assert_eq!(store.device_count().await.unwrap(), 6);
    let page = |limit, offset| {
        let store = Arc::clone(&store);
        async move {
            store
                .recent_devices(limit, offset)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.device_uuid, d.item_id))
                .collect::<Vec<_>>()
        }
    };
    let row = |d: &str, i: &str| (d.to_string(), i.to_string());
    assert_eq!(page(2, 0).await, [row("d0", "b"), row("d4", "a")]);
    assert_eq!(
        page(3, 2).await,
        [row("d3", "a"), row("d2", "a"), row("d1", "a")]
    );
    assert_eq!(page(3, 5).await, [row("d0", "a")]);
    assert!(page(3, 6).await.is_empty());
    assert!(page(0, 0).await.is_empty());
    let all: Vec<_> = store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.device_uuid, d.item_id))
        .collect();
    assert_eq!(all.len(), 6);
    assert_eq!(all[..2], [row("d0", "b"), row("d4", "a")]);
}
