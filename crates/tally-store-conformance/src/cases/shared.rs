//! What instances sharing a store keep in it: a secret set once, leases of background jobs,
//! request envelopes used once, report-session windows. Every store keeps them the same way, so
//! that a store that is shared behaves as one that is not.

use std::sync::Arc;

use tally_store::Store;

use crate::fixtures::NOW;

/// Runs `n` copies of `call` at once and returns their answers.
async fn at_once<T, F, Fut>(n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(call(i))).collect();
    let mut answers = Vec::with_capacity(n);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

pub async fn a_setting_inserted_by_racing_callers_keeps_one_value(store: Arc<dyn Store>) {
    let kept = at_once(20, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .setting_or_insert("secret", &format!("value-{i}"))
                .await
                .unwrap()
        }
    })
    .await;
    assert!(kept.iter().all(|v| *v == kept[0]), "{kept:?}");
    assert_eq!(
        store.get_setting("secret").await.unwrap(),
        Some(kept[0].clone())
    );
    assert_eq!(
        store.setting_or_insert("secret", "later").await.unwrap(),
        kept[0],
        "a later caller gets the value kept"
    );
}

pub async fn a_lease_has_one_holder_until_it_expires_or_is_released(store: Arc<dyn Store>) {
    let holders = at_once(10, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .hold_lease("job", &format!("instance-{i}"), NOW, NOW + 60)
                .await
                .unwrap()
        }
    })
    .await;
    let winners: Vec<usize> = (0..10).filter(|i| holders[*i]).collect();
    assert_eq!(winners.len(), 1, "one holder at a time: {holders:?}");
    let winner = format!("instance-{}", winners[0]);
    let other = if winners[0] == 0 {
        "instance-1"
    } else {
        "instance-0"
    };
    assert!(
        store
            .hold_lease("job", &winner, NOW + 30, NOW + 90)
            .await
            .unwrap(),
        "the holder renews it"
    );
    assert!(
        !store
            .hold_lease("job", other, NOW + 89, NOW + 150)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_lease("job", other, NOW + 90, NOW + 150)
            .await
            .unwrap(),
        "an expired lease goes to whoever asks"
    );
    assert!(
        !store
            .hold_lease("job", &winner, NOW + 91, NOW + 150)
            .await
            .unwrap(),
        "the first holder lost it"
    );
    assert!(
        store
            .hold_lease("other-job", &winner, NOW + 91, NOW + 150)
            .await
            .unwrap(),
        "leases of other jobs are their own"
    );
    store.release_lease("job", &winner).await.unwrap();
    assert!(
        !store
            .hold_lease("job", &winner, NOW + 92, NOW + 150)
            .await
            .unwrap(),
        "only the holder can release a lease"
    );
    store.release_lease("job", other).await.unwrap();
    assert!(
        store
            .hold_lease("job", &winner, NOW + 92, NOW + 150)
            .await
            .unwrap()
    );
}

pub async fn an_envelope_is_used_once_until_it_is_forgotten(store: Arc<dyn Store>) {
    let id = [7u8; 16];
    let first = at_once(20, |_| {
        let store = Arc::clone(&store);
        async move { store.first_use(&id, NOW, NOW + 600).await.unwrap() }
    })
    .await;
    assert_eq!(first.iter().filter(|used| **used).count(), 1, "{first:?}");
    assert!(!store.first_use(&id, NOW + 599, NOW + 1200).await.unwrap());
    assert!(store.first_use(&[8u8; 16], NOW, NOW + 600).await.unwrap());
    assert!(
        store.first_use(&id, NOW + 600, NOW + 1200).await.unwrap(),
        "forgotten once its time is over"
    );
    assert!(!store.first_use(&id, NOW + 601, NOW + 1200).await.unwrap());
}

pub async fn session_messages_are_accepted_once_within_the_window(store: Arc<dyn Store>) {
    let session = [3u8; 16];
    let expires = NOW + 3600;
    let same = at_once(20, |_| {
        let store = Arc::clone(&store);
        async move {
            store
                .accept_session_message(&session, 1, expires)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(same.iter().filter(|a| **a).count(), 1, "{same:?}");
    let mut verdicts = Vec::new();
    for seq in [0, 5, 3, 3, 200, 136, 137, 200] {
        verdicts.push(
            store
                .accept_session_message(&session, seq, expires)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        verdicts,
        [false, true, true, false, true, false, true, false]
    );
    assert!(
        store
            .accept_session_message(&[4u8; 16], 1, expires)
            .await
            .unwrap(),
        "sessions are independent"
    );
    assert!(
        store
            .accept_session_message(&session, u64::MAX, expires)
            .await
            .unwrap(),
        "numbers use all 64 bits"
    );
    assert!(
        !store
            .accept_session_message(&session, u64::MAX, expires)
            .await
            .unwrap()
    );
}

pub async fn the_sweep_forgets_only_what_expired(store: Arc<dyn Store>) {
    assert!(store.first_use(&[1u8; 16], NOW, NOW + 10).await.unwrap());
    assert!(store.first_use(&[2u8; 16], NOW, NOW + 100).await.unwrap());
    assert!(
        store
            .accept_session_message(&[1u8; 16], 1, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        store
            .accept_session_message(&[2u8; 16], 1, NOW + 100)
            .await
            .unwrap()
    );
    assert!(store.hold_lease("job", "a", NOW, NOW + 10).await.unwrap());
    assert_eq!(store.sweep_expired(NOW + 50).await.unwrap(), 3);
    assert!(
        !store
            .first_use(&[2u8; 16], NOW + 50, NOW + 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .accept_session_message(&[2u8; 16], 1, NOW + 100)
            .await
            .unwrap(),
        "a live session keeps its window"
    );
    assert!(
        store
            .accept_session_message(&[1u8; 16], 1, NOW + 10)
            .await
            .unwrap(),
        "a swept session starts afresh (its ticket is refused as expired before this)"
    );
}
