//! Licenses, their items, organizations and handshake codes.

use std::sync::Arc;

use tally_proto::admin::ValidationRules;
use tally_proto::license::LicenseItem;
use tally_store::{HandshakeChange, HandshakeRow, NewHandshake, Store, StoreError};

use crate::fixtures::{NOW, detailed_item, item, new_license, used_at};

/// A new handshake code of `org` with `items`.
fn handshake(code: &str, org: &str, items: &[&str]) -> NewHandshake {
    NewHandshake {
        code: code.into(),
        organization: org.into(),
        items: items.iter().map(|s| s.to_string()).collect(),
        description: None,
        created_at: NOW,
    }
}

/// The item ids of a code, in consumption order.
fn ids(row: &HandshakeRow) -> Vec<String> {
    row.items.iter().map(|(_, i)| i.id.clone()).collect()
}

pub async fn import_is_idempotent_and_attaches_items_to_the_default_code(store: Arc<dyn Store>) {
    let first = store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    assert!(first.newly_imported);
    assert_eq!(first.default_code, "acme-default");
    let again = store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    assert!(!again.newly_imported);
    assert_eq!(again.default_code, "acme-default");
    store
        .import_license(new_license("L2", "acme", vec![item("b", 1)]))
        .await
        .unwrap();
    let code = store.handshake("acme-default").await.unwrap().unwrap();
    assert_eq!(ids(&code), ["a", "b"]);
    assert!(code.is_default && code.enabled);
    assert_eq!(store.licenses().await.unwrap().len(), 2);
}

pub async fn a_conflicting_item_id_writes_nothing(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    let err = store
        .import_license(new_license("L2", "beta", vec![item("a", 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.organization("beta").await.unwrap().is_none());
    assert!(store.handshake("beta-default").await.unwrap().is_none());
    assert_eq!(store.licenses().await.unwrap().len(), 1);
}

pub async fn a_license_listing_an_item_twice_is_a_conflict(store: Arc<dyn Store>) {
    let err = store
        .import_license(new_license("L1", "acme", vec![item("a", 1), item("a", 2)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.licenses().await.unwrap().is_empty());
    assert!(store.organization("acme").await.unwrap().is_none());
    assert!(store.items(NOW).await.unwrap().is_empty());
}

/// A new organization's default code must be new: an existing code of another organization is
/// a conflict, and nothing of the license is kept.
pub async fn a_default_code_already_taken_is_a_conflict_and_writes_nothing(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1)]))
        .await
        .unwrap();
    store
        .create_handshake(handshake("beta-default", "acme", &["a"]))
        .await
        .unwrap();
    let err = store
        .import_license(new_license("L2", "beta", vec![item("b", 1)]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.organization("beta").await.unwrap().is_none());
    assert_eq!(store.licenses().await.unwrap().len(), 1);
    assert!(!used_at(&*store, NOW).await.contains_key("b"));
    let code = store.handshake("beta-default").await.unwrap().unwrap();
    assert_eq!(
        (code.organization.as_str(), ids(&code)),
        ("acme", vec!["a".into()])
    );
}

pub async fn a_new_activation_of_a_license_replaces_its_file_and_keeps_its_items(
    store: Arc<dyn Store>,
) {
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
    let items = store.items(NOW).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].item,
        item("a", 1),
        "the items stay as first imported"
    );
}

pub async fn items_and_license_text_round_trip_exactly(store: Arc<dyn Store>) {
    let mut license = new_license("L1", "acme", vec![detailed_item("x"), item("y", 3)]);
    license.activated_text = "-----BEGIN-----\r\n  é ✓ \u{7f}tail\n\n-----END-----".into();
    store.import_license(license.clone()).await.unwrap();

    let stored = store.licenses().await.unwrap();
    assert_eq!(stored[0].license, license.license);
    assert_eq!(stored[0].activated_text, license.activated_text);
    assert_eq!(stored[0].imported_at, NOW);
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
    assert_eq!(items.len(), 2);
    assert!(items.contains(&detailed_item("x")) && items.contains(&item("y", 3)));
    let code = store.handshake("acme-default").await.unwrap().unwrap();
    assert_eq!(code.items.len(), 2);
    assert!(
        code.items
            .iter()
            .all(|(l, i)| l == "L1" && items.contains(i))
    );
    let org = store.organization("acme").await.unwrap().unwrap();
    assert_eq!(
        (
            org.id.as_str(),
            org.name.as_str(),
            org.default_code.as_str()
        ),
        ("acme", "acme", "acme-default")
    );
}

pub async fn licenses_come_back_in_import_order(store: Arc<dyn Store>) {
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

pub async fn handshake_creation_checks_its_references(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1), item("b", 1)]))
        .await
        .unwrap();
    store
        .import_license(new_license("L2", "beta", vec![item("c", 1)]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_handshake(handshake("x", "ghost", &["a"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .create_handshake(handshake("x", "acme", &["zz"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_handshake(handshake("x", "acme", &["c"])).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_handshake(handshake("x", "acme", &["b", "a"]))
        .await
        .unwrap();
    assert!(matches!(
        store.create_handshake(handshake("x", "acme", &["a"])).await,
        Err(StoreError::Conflict(_))
    ));
    let row = store.handshake("x").await.unwrap().unwrap();
    assert_eq!(
        ids(&row),
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
    assert_eq!(ids(&row), ["b", "a"], "the admin's order is kept");
    let foreign = HandshakeChange {
        items: Some(vec!["c".into()]),
        ..Default::default()
    };
    assert!(matches!(
        store.update_handshake("x", foreign).await,
        Err(StoreError::Conflict(_))
    ));
    let missing = HandshakeChange {
        items: Some(vec!["a".into(), "zz".into()]),
        ..Default::default()
    };
    assert!(matches!(
        store.update_handshake("x", missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        ids(&store.handshake("x").await.unwrap().unwrap()),
        ["b", "a"],
        "a refused change changes nothing"
    );
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
    let row = store.handshake("x").await.unwrap().unwrap();
    assert!(!row.custom_order);
    assert_eq!(ids(&row), ["a", "b"]);
}

/// Every field of a handshake change is kept, fields left out stay as they are, and the list of
/// codes holds every code of every organization.
pub async fn handshake_changes_are_kept_and_listed(store: Arc<dyn Store>) {
    store
        .import_license(new_license("L1", "acme", vec![item("a", 1), item("b", 1)]))
        .await
        .unwrap();
    store
        .import_license(new_license("L2", "beta", vec![item("c", 1)]))
        .await
        .unwrap();
    let mut new = handshake("x", "acme", &["a"]);
    new.description = Some("front desk".into());
    store.create_handshake(new).await.unwrap();
    let row = store.handshake("x").await.unwrap().unwrap();
    assert_eq!(
        (
            row.organization.as_str(),
            row.description.as_deref(),
            row.enabled,
            row.is_default,
            row.custom_order,
            row.session_password_hash.as_deref(),
        ),
        ("acme", Some("front desk"), true, false, false, None)
    );
    assert_eq!(row.validation, ValidationRules::default());

    let rules = ValidationRules {
        domains: vec!["*.example.com".into()],
        app_ids: vec!["com.acme.scanner".into()],
        process_names: vec!["scan?.exe".into()],
    };
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    store
        .update_handshake(
            "x",
            HandshakeChange {
                session_password_hash: Some(Some(hash.into())),
                validation: Some(rules.clone()),
                enabled: Some(false),
                description: Some("back office".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let row = store.handshake("x").await.unwrap().unwrap();
    assert_eq!(
        (
            row.description.as_deref(),
            row.enabled,
            row.session_password_hash.as_deref(),
        ),
        (Some("back office"), false, Some(hash))
    );
    assert_eq!(row.validation, rules);
    assert_eq!(ids(&row), ["a"]);

    // Only the password goes; the rest stays.
    store
        .update_handshake(
            "x",
            HandshakeChange {
                session_password_hash: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let row = store.handshake("x").await.unwrap().unwrap();
    assert_eq!(row.session_password_hash, None);
    assert_eq!(
        (row.description.as_deref(), row.enabled, &row.validation),
        (Some("back office"), false, &rules)
    );
    let default = store.handshake("acme-default").await.unwrap().unwrap();
    assert!(default.enabled && default.session_password_hash.is_none());

    let mut codes: Vec<(String, String, bool)> = store
        .handshakes()
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.code, h.organization, h.is_default))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("acme-default".into(), "acme".into(), true),
            ("beta-default".into(), "beta".into(), true),
            ("x".into(), "acme".into(), false),
        ]
    );
    assert!(store.handshake("nope").await.unwrap().is_none());
    assert!(store.organization("ghost").await.unwrap().is_none());
}
