//! The data-set generator (`tally_store_sqlite::seed`), which writes the file directly.

use tally_core::admission::{Decision, Refusal};
use tally_store_sqlite::seed::{SeedPlan, seed_devices};

use super::*;

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
