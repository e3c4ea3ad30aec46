//! Public trials: one per device, ever.

use std::sync::Arc;

use tally_store::Store;

use crate::fixtures::NOW;

pub async fn a_trial_starts_once_and_never_again(store: Arc<dyn Store>) {
    assert_eq!(store.trial("d1", NOW, 3600).await.unwrap(), NOW + 3600);
    assert_eq!(
        store.trial("d1", NOW + 10, 7200).await.unwrap(),
        NOW + 3600,
        "a running trial keeps its end"
    );
    assert_eq!(
        store.trial("d1", NOW + 5000, 3600).await.unwrap(),
        NOW + 3600,
        "an ended trial does not start again"
    );
    assert_eq!(
        store.trial("d2", NOW + 5000, 3600).await.unwrap(),
        NOW + 8600,
        "another device has its own"
    );
}

/// The first calls of one device, at once: one trial is recorded and every call sees its end.
pub async fn simultaneous_first_calls_agree_on_one_trial(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.trial("d1", NOW + i, 3600).await.unwrap() })
        })
        .collect();
    let mut ends = Vec::new();
    for t in tasks {
        ends.push(t.await.unwrap());
    }
    let first = ends[0];
    assert!(ends.iter().all(|e| *e == first), "{ends:?}");
    assert!((NOW + 3600..NOW + 3620).contains(&first), "{first}");
    assert_eq!(store.trial("d1", NOW + 100, 3600).await.unwrap(), first);
}
