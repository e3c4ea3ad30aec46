//! Alert levels, the alert history and the authorization outcomes alerts are computed from.

use std::sync::Arc;

use tally_store::{AlertLevel, AlertRow, AuthOutcomes, NewAlert, OutcomeTotals, Store};

use crate::fixtures::NOW;

/// The levels, sorted by key (the contract does not order them).
async fn levels(store: &dyn Store) -> Vec<(String, u8)> {
    let mut levels: Vec<(String, u8)> = store
        .alert_levels()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.key, l.level))
        .collect();
    levels.sort();
    levels
}

fn level(key: &str, level: u8) -> AlertLevel {
    AlertLevel {
        key: key.into(),
        level,
    }
}

pub async fn alert_levels_are_upserted_by_key(store: Arc<dyn Store>) {
    assert!(store.alert_levels().await.unwrap().is_empty());
    store
        .set_alert_levels(vec![level("usage:a", 1), level("devices:b", 2)])
        .await
        .unwrap();
    store
        .set_alert_levels(vec![level("devices:b", 3), level("failures", 0)])
        .await
        .unwrap();
    assert_eq!(
        levels(&*store).await,
        [
            ("devices:b".into(), 3),
            ("failures".into(), 0),
            ("usage:a".into(), 1)
        ]
    );
    store.set_alert_levels(vec![]).await.unwrap();
    assert_eq!(
        levels(&*store).await.len(),
        3,
        "nothing given, nothing changed"
    );
    store
        .set_alert_levels(vec![level("usage:a", u8::MAX)])
        .await
        .unwrap();
    assert!(levels(&*store).await.contains(&("usage:a".into(), u8::MAX)));
}

pub async fn the_alert_history_lists_newest_first_with_its_delivery(store: Arc<dyn Store>) {
    assert!(store.alerts(10).await.unwrap().is_empty());
    let alert = |at, subject: &str, body: &str| NewAlert {
        at,
        subject: subject.into(),
        body: body.into(),
        email: "pending".into(),
        webhooks: "pending".into(),
        deliveries: Vec::new(),
    };
    let first = store
        .record_alert(alert(
            NOW,
            "Usage at 80 %",
            "item a: 80 of 100\nitem b: 9 of 10",
        ))
        .await
        .unwrap();
    let second = store
        .record_alert(alert(
            NOW + 60,
            "Failed authorizations",
            "acme-default: 40 %",
        ))
        .await
        .unwrap();
    assert_ne!(first, second);
    let view = |id, at, subject: &str, body: &str, email: &str, webhooks: &str| AlertRow {
        id,
        at,
        subject: subject.into(),
        body: body.into(),
        email: email.into(),
        webhooks: webhooks.into(),
    };
    let first_pending = view(
        first,
        NOW,
        "Usage at 80 %",
        "item a: 80 of 100\nitem b: 9 of 10",
        "pending",
        "pending",
    );
    let second_pending = view(
        second,
        NOW + 60,
        "Failed authorizations",
        "acme-default: 40 %",
        "pending",
        "pending",
    );
    assert_eq!(
        store.alerts(10).await.unwrap(),
        [second_pending.clone(), first_pending]
    );
    store
        .set_alert_delivery(first, Some("sent"), Some("https://hooks.example: 503"))
        .await
        .unwrap();
    let alerts = store.alerts(10).await.unwrap();
    assert_eq!(
        alerts[1],
        view(
            first,
            NOW,
            "Usage at 80 %",
            "item a: 80 of 100\nitem b: 9 of 10",
            "sent",
            "https://hooks.example: 503"
        )
    );
    assert_eq!(alerts[0], second_pending, "only the alert named changes");
    assert_eq!(store.alerts(1).await.unwrap(), [second_pending]);
    store
        .set_alert_delivery(first, None, Some("sent"))
        .await
        .unwrap();
    let alerts = store.alerts(10).await.unwrap();
    assert_eq!(
        (alerts[1].email.as_str(), alerts[1].webhooks.as_str()),
        ("sent", "sent"),
        "a text not given is kept"
    );
}

pub async fn auth_outcomes_add_up_per_code_and_forget_old_minutes(store: Arc<dyn Store>) {
    let minute = NOW / 60;
    let outcome = |code: &str, minute, ok, failed| AuthOutcomes {
        handshake_code: code.into(),
        minute,
        ok,
        failed,
    };
    store
        .record_auth_outcomes(vec![outcome("a", minute, 2, 1), outcome("b", minute, 0, 3)])
        .await
        .unwrap();
    store
        .record_auth_outcomes(vec![
            outcome("a", minute, 1, 0),
            outcome("a", minute + 1, 5, 0),
        ])
        .await
        .unwrap();
    store.record_auth_outcomes(vec![]).await.unwrap();
    let since = |at| {
        let store = Arc::clone(&store);
        async move {
            let mut rows: Vec<(String, u64, u64)> = store
                .auth_outcomes(at)
                .await
                .unwrap()
                .into_iter()
                .map(
                    |OutcomeTotals {
                         handshake_code,
                         ok,
                         failed,
                     }| (handshake_code, ok, failed),
                )
                .collect();
            rows.sort();
            rows
        }
    };
    assert_eq!(since(NOW).await, [("a".into(), 8, 1), ("b".into(), 0, 3)]);
    assert_eq!(
        since(NOW + 59).await,
        [("a".into(), 8, 1), ("b".into(), 0, 3)],
        "counted per minute: the minute of `since` is in"
    );
    assert_eq!(since(NOW + 60).await, [("a".into(), 5, 0)]);
    assert_eq!(
        since(NOW).await,
        [("a".into(), 5, 0)],
        "older minutes were deleted"
    );
}
