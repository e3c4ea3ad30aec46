//! Portal sessions: looked up while unexpired, purged at the next sign-in, deleted at sign-out.

use std::sync::Arc;

use tally_store::{PortalSession, Store};

use crate::fixtures::NOW;

fn session(token_hash: &str, created_at: i64, expires_at: i64) -> PortalSession {
    PortalSession {
        token_hash: token_hash.into(),
        csrf: format!("csrf of {token_hash}"),
        created_at,
        expires_at,
    }
}

pub async fn sessions_expire_and_are_purged_by_a_new_sign_in(store: Arc<dyn Store>) {
    let short = session("h1", NOW, NOW + 100);
    let long = session("h2", NOW, NOW + 5000);
    store.create_session(short.clone()).await.unwrap();
    store.create_session(long.clone()).await.unwrap();
    assert_eq!(store.session("h1", NOW).await.unwrap(), Some(short.clone()));
    assert_eq!(store.session("h1", NOW + 99).await.unwrap(), Some(short));
    assert_eq!(
        store.session("h1", NOW + 100).await.unwrap(),
        None,
        "expired at its expiry"
    );
    assert_eq!(store.session("nope", NOW).await.unwrap(), None);
    // A sign-in after h1 expired purges it: it is gone even for an earlier time.
    let later = session("h3", NOW + 200, NOW + 3000);
    store.create_session(later.clone()).await.unwrap();
    assert_eq!(store.session("h1", NOW).await.unwrap(), None);
    assert_eq!(store.session("h2", NOW + 200).await.unwrap(), Some(long));
    assert_eq!(store.session("h3", NOW + 200).await.unwrap(), Some(later));
}

pub async fn signing_out_deletes_one_session_or_every_session(store: Arc<dyn Store>) {
    for hash in ["h1", "h2", "h3"] {
        store
            .create_session(session(hash, NOW, NOW + 3600))
            .await
            .unwrap();
    }
    store.delete_session("h1").await.unwrap();
    store.delete_session("never-existed").await.unwrap();
    assert_eq!(store.session("h1", NOW).await.unwrap(), None);
    assert!(store.session("h2", NOW).await.unwrap().is_some());
    store.delete_all_sessions().await.unwrap();
    for hash in ["h2", "h3"] {
        assert_eq!(store.session(hash, NOW).await.unwrap(), None, "{hash}");
    }
    store
        .create_session(session("h4", NOW, NOW + 3600))
        .await
        .unwrap();
    assert!(store.session("h4", NOW).await.unwrap().is_some());
}
