//! Behaviour of the SQLite store on a real database file.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;

use tally_core::admission::{Decision, Refusal};
use tally_proto::license::{
    ActiveWindow, LICENSE_FORMAT, License, LicenseItem, LicenseType, Organization,
};
use tally_store::*;
use tally_store_sqlite::SqliteStore;

mod admission;
mod backup;
mod migrations;
mod places;
mod properties;
mod rows;
mod usage;

const NOW: i64 = 1_780_272_000;

fn item(id: &str, quantity: u64) -> LicenseItem {
    LicenseItem {
        id: id.into(),
        product: "scanner".into(),
        versions: None,
        modules: vec![],
        license_type: LicenseType::PerDevice,
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

fn new_license(id: &str, org: &str, items: Vec<LicenseItem>) -> NewLicense {
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

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("tally.db")).unwrap()
}

fn admit(device: &str, candidates: Vec<LicenseItem>, now: i64) -> AdmitRequest {
    AdmitRequest {
        device_uuid: device.into(),
        handshake_code: "acme-default".into(),
        friendly_name: None,
        candidates,
        ask: tally_core::admission::Ask::default(),
        now,
    }
}

/// Imports a per-device license of `org` and registers `devices` on its default code at `NOW`,
/// so that they may report usage.
async fn registered(store: &SqliteStore, org: &str, devices: &[&str]) {
    let held = item(&format!("{org}-item"), 100);
    store
        .import_license(new_license(&format!("L-{org}"), org, vec![held.clone()]))
        .await
        .unwrap();
    for device in devices {
        let mut request = admit(device, vec![held.clone()], NOW);
        request.handshake_code = format!("{org}-default");
        let admission = store.admit_device(request).await.unwrap();
        assert!(matches!(admission.decision, Decision::Admit { .. }));
    }
}

/// The outcome of a batch the store recorded.
fn recorded(result: ReportResult) -> ReportOutcome {
    match result {
        ReportResult::Recorded(outcome) => outcome,
        ReportResult::NoLivePlace => panic!("the device held no live place"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_idempotent_and_attaches_items_to_the_default_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    assert!(first.newly_imported);
    let again = store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    assert!(!again.newly_imported);
    store
        .import_license(new_license("L2", "acme", vec![item("b", 1)]))
        .await
        .unwrap();
    let code = store.handshake("acme-default").await.unwrap().unwrap();
    let ids: Vec<&str> = code.items.iter().map(|(_, i)| i.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(code.is_default && code.enabled);
    assert_eq!(store.licenses().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_item_id_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    let err = store
        .import_license(new_license("L2", "beta", vec![item("a", 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)));
    assert!(store.organization("beta").await.unwrap().is_none());
    assert_eq!(store.licenses().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_creation_checks_its_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1), item("b", 1)]))
        .await
        .unwrap();
    store
        .import_license(new_license("L2", "beta", vec![item("c", 1)]))
        .await
        .unwrap();
    let h = |code: &str, org: &str, items: &[&str]| NewHandshake {
        code: code.into(),
        organization: org.into(),
        items: items.iter().map(|s| s.to_string()).collect(),
        description: None,
        created_at: NOW,
    };
    assert!(matches!(
        store.create_handshake(h("x", "ghost", &["a"])).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_handshake(h("x", "acme", &["zz"])).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_handshake(h("x", "acme", &["c"])).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_handshake(h("x", "acme", &["b", "a"]))
        .await
        .unwrap();
    assert!(matches!(
        store.create_handshake(h("x", "acme", &["a"])).await,
        Err(StoreError::Conflict(_))
    ));
    let ids = |row: HandshakeRow| {
        row.items
            .iter()
            .map(|(_, i)| i.id.clone())
            .collect::<Vec<_>>()
    };
    let row = store.handshake("x").await.unwrap().unwrap();
    assert_eq!(
        ids(row),
        ["a", "b"],
        "the default order applies until the admin reorders"
    );
    let reorder = HandshakeChange {
        items: Some(vec!["b".into(), "a".into()]),
        ..Default::default()
    };
    store.update_handshake("x", reorder).await.unwrap();
    let row = store.handshake("x").await.unwrap().unwrap();
    assert!(row.custom_order);
    assert_eq!(ids(row), ["b", "a"], "the admin's order is kept");
    let foreign = HandshakeChange {
        items: Some(vec!["c".into()]),
        ..Default::default()
    };
    assert!(matches!(
        store.update_handshake("x", foreign).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .update_handshake("nope", HandshakeChange::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .update_handshake(
            "x",
            HandshakeChange {
                default_order: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store.handshake("x").await.unwrap().unwrap()),
        ["a", "b"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_device_places_fill_lapse_and_stay_with_known_devices() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 3)]))
        .await
        .unwrap();
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
    assert!(matches!(known.decision, Decision::Admit { .. }));
    // d2 and d3 lapse after 24 h without contact; d1 was refreshed 10 s later.
    let later = store
        .admit_device(admit("d4", vec![item("a", 3)], NOW + 86_400))
        .await
        .unwrap();
    assert!(matches!(later.decision, Decision::Admit { .. }));
    assert_eq!(store.items(NOW + 86_400).await.unwrap()[0].used, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_admissions_never_exceed_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 5)]))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .admit_device(admit(&format!("dev-{i}"), vec![item("a", 5)], NOW))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if matches!(t.await.unwrap().decision, Decision::Admit { .. }) {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(store.devices().await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_once_per_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    let slice = NOW / 180;
    let batch = |ids: &[&str]| ReportBatch {
        device_uuid: "d1".into(),
        handshake_code: "acme-default".into(),
        reports: ids
            .iter()
            .map(|id| ReportRow {
                report_id: id.to_string(),
                slice,
                counts: [("scan".to_string(), 2u64), ("page".to_string(), 1)].into(),
            })
            .collect(),
        received_at: NOW,
    };
    let first = recorded(store.record_reports(batch(&["r1", "r2"])).await.unwrap());
    assert_eq!(first.accepted, ["r1", "r2"]);
    let second = recorded(store.record_reports(batch(&["r2", "r3"])).await.unwrap());
    assert_eq!(
        (second.accepted.as_slice(), second.duplicates.as_slice()),
        (&["r3".to_string()][..], &["r2".to_string()][..])
    );
    let day = NOW / 86_400;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .import_license(new_license("L1", "acme", vec![item("a", 3)]))
            .await
            .unwrap();
        store.put_setting("k", "v").await.unwrap();
        store
            .admit_device(admit("d1", vec![item("a", 3)], NOW))
            .await
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.devices().await.unwrap().len(), 1);
    assert_eq!(
        store.licenses().await.unwrap()[0].activated_text,
        "text of L1"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_activation_of_a_license_replaces_its_file_and_keeps_its_items() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    let mut again = new_license("L1", "acme", vec![item("a", 1)]);
    again.activated_text = "a newer activation".into();
    let outcome = store.import_license(again).await.unwrap();
    assert!(!outcome.newly_imported);
    let licenses = store.licenses().await.unwrap();
    assert_eq!(licenses.len(), 1);
    assert_eq!(licenses[0].activated_text, "a newer activation");
    let other = new_license("L1", "acme", vec![item("a", 2)]);
    assert!(matches!(
        store.import_license(other).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        store.licenses().await.unwrap()[0].activated_text,
        "a newer activation"
    );
}
