//! The maintained place counters and the data-set generator.

use tally_core::admission::{Decision, Refusal};
use tally_store::Store;
use tally_store_sqlite::seed::{SeedPlan, seed_devices};

use super::{NOW, admit, item, new_license, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_moved_back_never_admits_more_than_a_count_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 2)]))
        .await
        .unwrap();
    let ask = |d: &str, now: i64| admit(d, vec![item("a", 2)], now);
    for d in ["d1", "d2"] {
        assert!(matches!(
            store.admit_device(ask(d, NOW)).await.unwrap().decision,
            Decision::Admit { .. }
        ));
    }
    // A day later both have lapsed; d3 takes a place and the counters move to that time.
    let later = NOW + 86_400 + 1;
    assert!(matches!(
        store.admit_device(ask("d3", later)).await.unwrap().decision,
        Decision::Admit { .. }
    ));
    // The clock goes back: d1 and d2 hold their places again by their rows, so d4 is refused
    // even though the counters, swept to `later`, only know of d3.
    assert_eq!(
        store
            .admit_device(ask("d4", NOW + 100))
            .await
            .unwrap()
            .decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    // Forward again, d4 fits beside d3.
    assert!(matches!(
        store
            .admit_device(ask("d4", later + 10))
            .await
            .unwrap()
            .decision,
        Decision::Admit { .. }
    ));
    assert_eq!(
        store
            .admit_device(ask("d5", later + 20))
            .await
            .unwrap()
            .decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistering_frees_the_place_for_another_device() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    let ask = |d: &str| admit(d, vec![item("a", 1)], NOW);
    assert!(matches!(
        store.admit_device(ask("d1")).await.unwrap().decision,
        Decision::Admit { .. }
    ));
    assert_eq!(
        store.admit_device(ask("d2")).await.unwrap().decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
    assert_eq!(store.unregister_device("d1").await.unwrap(), 1);
    assert!(matches!(
        store.admit_device(ask("d2")).await.unwrap().decision,
        Decision::Admit { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_registers_devices_over_codes_within_quantity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    {
        let store = open(dir.path());
        store
            .import_license(new_license(
                "L1",
                "acme",
                vec![item("a", 1_500), item("b", 600)],
            ))
            .await
            .unwrap();
    }
    let plan = |devices| SeedPlan {
        devices,
        handshake_codes: 7,
        now: NOW,
    };
    // Too many: refused, and nothing was written.
    let err = seed_devices(&path, &plan(2_101)).unwrap_err();
    assert!(err.to_string().contains("room for 2100"), "{err}");
    {
        let store = open(dir.path());
        assert!(store.devices().await.unwrap().is_empty());
        assert!(store.handshake("seed-00001").await.unwrap().is_none());
    }
    let report = seed_devices(&path, &plan(2_000)).unwrap();
    assert_eq!((report.devices, report.handshake_codes), (2_000, 7));
    assert_eq!(report.organization, "acme");

    let store = open(dir.path());
    let devices = store.devices().await.unwrap();
    assert_eq!(devices.len(), 2_000);
    let on_code = |code: &str| devices.iter().filter(|d| d.handshake_code == code).count();
    assert_eq!(on_code("seed-00001"), 286);
    assert_eq!(on_code("seed-00007"), 285);
    let on_item = |id: &str| devices.iter().filter(|d| d.item_id == id).count();
    assert_eq!((on_item("a"), on_item("b")), (1_500, 500));
    let code = store.handshake("seed-00003").await.unwrap().unwrap();
    assert_eq!(code.items.len(), 2);
    // Item a is full; b has room for exactly 100 more devices.
    let both = || vec![item("a", 1_500), item("b", 600)];
    for n in 0..100 {
        let d = store
            .admit_device(admit(&format!("new-{n}"), both(), NOW + 5))
            .await
            .unwrap();
        assert!(
            matches!(d.decision, Decision::Admit { index: 1, .. }),
            "{n}: {d:?}"
        );
    }
    assert_eq!(
        store
            .admit_device(admit("one-too-many", both(), NOW + 5))
            .await
            .unwrap()
            .decision,
        Decision::Refuse(Refusal::DeviceQuota)
    );
}
