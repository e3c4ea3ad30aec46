//! What is written is read back exactly.

use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType, VersionRange};
use tally_store::*;

use super::{NOW, item, new_license, open};

fn detailed(id: &str) -> LicenseItem {
    LicenseItem {
        id: id.into(),
        product: "scanner-pro".into(),
        versions: Some(VersionRange {
            min_major: 2,
            max_major: 5,
        }),
        modules: vec!["qr".into(), "pdf417".into()],
        license_type: LicenseType::PerUsage,
        quantity: 12_345,
        start: NOW - 100,
        end: NOW + 365 * 86_400,
        grace_percent: 5,
        active_window: ActiveWindow::Days90,
        metric: Some("scan".into()),
        max_offline_days: Some(30),
        grace_days: Some(14),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_license_text_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut license = new_license("L1", "acme", vec![detailed("x"), item("y", 3)]);
    license.activated_text = "-----BEGIN-----\r\n  é ✓ \u{0}tail\n\n-----END-----".into();
    store.import_license(license.clone()).await.unwrap();

    let stored = store.licenses().await.unwrap();
    assert_eq!(stored[0].license, license.license);
    assert_eq!(stored[0].activated_text, license.activated_text);
    let items: Vec<LicenseItem> = store
        .items(NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(
                (s.license_id.as_str(), s.organization.as_str()),
                ("L1", "acme")
            );
            s.item
        })
        .collect();
    assert!(items.contains(&detailed("x")) && items.contains(&item("y", 3)));
    let code = store.handshake("acme-default").await.unwrap().unwrap();
    assert_eq!(code.items.len(), 2);
    assert!(
        code.items
            .iter()
            .all(|(l, i)| l == "L1" && items.contains(i))
    );
    let org = store.organization("acme").await.unwrap().unwrap();
    assert_eq!(org.default_code, "acme-default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licenses_come_back_in_import_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Same import instant: the order of import decides, not the id.
    for (id, item_id) in [("Lz", "a"), ("La", "b"), ("Lm", "c")] {
        store
            .import_license(new_license(id, "acme", vec![item(item_id, 1)]))
            .await
            .unwrap();
    }
    let ids: Vec<String> = store
        .licenses()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.license.license_id)
        .collect();
    assert_eq!(ids, ["Lz", "La", "Lm"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_listing_an_item_twice_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let err = store
        .import_license(new_license("L1", "acme", vec![item("a", 1), item("a", 2)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.licenses().await.unwrap().is_empty());
    assert!(store.organization("acme").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_upserted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.get_setting("k").await.unwrap(), None);
    store.put_setting("k", "one").await.unwrap();
    store.put_setting("k", "two").await.unwrap();
    assert_eq!(
        store.get_setting("k").await.unwrap().as_deref(),
        Some("two")
    );
}
