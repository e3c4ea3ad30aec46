//! Alert deliveries: recorded with their alert, claimed when due by one caller only, and kept
//! with every attempt until sent or given up.

use std::collections::HashSet;
use std::sync::Arc;

use tally_store::{
    AfterAttempt, DeliveryAttempt, DeliveryChannel, DeliveryRow, DeliveryState, NewAlert,
    NewDelivery, Store, StoreError,
};

use crate::fixtures::NOW;

fn delivery(channel: DeliveryChannel, target: &str) -> NewDelivery {
    NewDelivery {
        channel,
        target: target.into(),
        payload: format!("{{\"to\":\"{target}\"}}"),
    }
}

/// An alert at `at` with an email and two webhook deliveries.
async fn alert_with_three_deliveries(store: &dyn Store, at: i64) -> i64 {
    store
        .record_alert(NewAlert {
            at,
            subject: "Usage at 80 %".into(),
            body: "item a: 80 of 100".into(),
            email: "pending".into(),
            webhooks: "pending".into(),
            deliveries: vec![
                delivery(DeliveryChannel::Email, ""),
                delivery(DeliveryChannel::Webhook, "https://a.example/hook"),
                delivery(DeliveryChannel::Webhook, "https://b.example/hook"),
            ],
        })
        .await
        .unwrap()
}

fn attempt(at: i64, outcome: &str) -> DeliveryAttempt {
    DeliveryAttempt {
        at,
        outcome: outcome.into(),
    }
}

pub async fn due_deliveries_are_claimed_once_and_kept_until_sent_or_given_up(
    store: Arc<dyn Store>,
) {
    let alert = alert_with_three_deliveries(&*store, NOW).await;
    assert!(
        store
            .claim_due_deliveries(NOW - 1, NOW + 100, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before the alert"
    );
    let first = store.claim_due_deliveries(NOW, NOW + 100, 2).await.unwrap();
    assert_eq!(first.len(), 2, "the limit holds");
    assert!(
        first
            .iter()
            .all(|d| d.alert_id == alert && d.raised_at == NOW)
    );
    assert!(first.iter().all(|d| d.attempts == 0));
    let rest = store
        .claim_due_deliveries(NOW, NOW + 100, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1, "a claimed delivery is not claimed again");
    let mut all: Vec<_> = first.into_iter().chain(rest).collect();
    all.sort_by_key(|d| d.id);
    assert_eq!(all[0].channel, DeliveryChannel::Email);
    assert_eq!(all[0].target, "");
    assert_eq!(all[1].target, "https://a.example/hook");
    assert_eq!(all[1].payload, "{\"to\":\"https://a.example/hook\"}");
    assert!(
        store
            .claim_due_deliveries(NOW + 99, NOW + 200, 10)
            .await
            .unwrap()
            .is_empty(),
        "held until the claim lapses"
    );

    let (email, hook_a, hook_b) = (all[0].id, all[1].id, all[2].id);
    store
        .record_delivery_attempt(email, attempt(NOW + 1, "sent"), AfterAttempt::Sent)
        .await
        .unwrap();
    store
        .record_delivery_attempt(
            hook_a,
            attempt(NOW + 1, "HTTP 503"),
            AfterAttempt::RetryAt(NOW + 61),
        )
        .await
        .unwrap();
    store
        .record_delivery_attempt(hook_b, attempt(NOW + 1, "no answer"), AfterAttempt::GiveUp)
        .await
        .unwrap();
    let retry = store
        .claim_due_deliveries(NOW + 61, NOW + 200, 10)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1, "only the one to retry is due: {retry:?}");
    assert_eq!((retry[0].id, retry[0].attempts), (hook_a, 1));
    assert!(
        store
            .claim_due_deliveries(NOW + 100_000, NOW + 100_100, 10)
            .await
            .unwrap()
            .iter()
            .all(|d| d.id == hook_a),
        "sent and given-up deliveries are never due again"
    );
    assert!(matches!(
        store
            .record_delivery_attempt(hook_a + 1000, attempt(NOW, "sent"), AfterAttempt::Sent)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn racing_claimers_take_each_delivery_once(store: Arc<dyn Store>) {
    for i in 0..10 {
        alert_with_three_deliveries(&*store, NOW + i).await;
    }
    let mut claims = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            store
                .claim_due_deliveries(NOW + 10, NOW + 1000, 5)
                .await
                .unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for claim in claims {
        for d in claim.await.unwrap() {
            assert!(seen.insert(d.id), "delivery {} claimed twice", d.id);
        }
    }
    assert_eq!(seen.len(), 30, "every due delivery claimed");
}

pub async fn the_history_lists_every_attempt_per_delivery(store: Arc<dyn Store>) {
    let older = alert_with_three_deliveries(&*store, NOW).await;
    let newer = alert_with_three_deliveries(&*store, NOW + 5).await;
    let claimed = store.claim_due_deliveries(NOW, NOW + 10, 10).await.unwrap();
    let email = claimed
        .iter()
        .find(|d| d.channel == DeliveryChannel::Email)
        .unwrap()
        .id;
    store
        .record_delivery_attempt(
            email,
            attempt(NOW, "no answer within 15 s"),
            AfterAttempt::RetryAt(NOW + 60),
        )
        .await
        .unwrap();
    store
        .record_delivery_attempt(email, attempt(NOW + 60, "sent"), AfterAttempt::Sent)
        .await
        .unwrap();

    let rows: Vec<DeliveryRow> = store.alert_deliveries(vec![newer, older]).await.unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows[..3].iter().all(|d| d.alert_id == older), "by alert");
    assert!(
        rows.windows(2)
            .all(|w| (w[0].alert_id, w[0].id) < (w[1].alert_id, w[1].id))
    );
    assert_eq!(
        rows[0],
        DeliveryRow {
            id: email,
            alert_id: older,
            channel: DeliveryChannel::Email,
            target: String::new(),
            state: DeliveryState::Sent,
            next_at: None,
            attempts: vec![
                attempt(NOW, "no answer within 15 s"),
                attempt(NOW + 60, "sent")
            ],
        }
    );
    assert_eq!(rows[1].state, DeliveryState::Pending);
    assert_eq!(
        rows[1].next_at,
        Some(NOW + 10),
        "claimed, due again when the claim lapses"
    );
    assert!(rows[1].attempts.is_empty());
    assert_eq!(
        rows[3].next_at,
        Some(NOW + 5),
        "not claimed: due at its alert"
    );
    assert!(store.alert_deliveries(vec![]).await.unwrap().is_empty());
    assert!(
        store
            .alert_deliveries(vec![newer + 1])
            .await
            .unwrap()
            .is_empty()
    );
}
