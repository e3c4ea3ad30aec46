//! Which web pages may call the client API from a browser (CORS), from the domains of the
//! handshake codes (`tally_core::origin` has the rules). A preflight cannot know the code (it is
//! sealed in the request that follows), so the question asked here is whether *some* code allows
//! the origin; the request's own code is checked after it is opened (`service::authorize`).
//! Disabled codes count too: a page of a disabled code must be able to read its refusal
//! (`113 handshake_disabled`), which makes the SDK forget the grant.
//!
//! The domain patterns of every code are read once and kept while the store says its
//! configuration has not changed ([`Store::config_version`]), so a code edited in the portal, or on
//! another instance sharing the store, is seen by the next request.

use std::sync::{Arc, RwLock};

use tally_store::Store;

/// The domain patterns of every handshake code, as of one configuration version.
struct Snapshot {
    version: Option<u64>,
    codes: Vec<Vec<String>>,
}

/// The CORS side of the origin rules, shared by every request of one router.
pub struct OriginPolicy {
    store: Arc<dyn Store>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
}

impl OriginPolicy {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            snapshot: RwLock::new(None),
        }
    }

    /// Whether some handshake code allows pages on `origin`. A store failure allows nothing
    /// (logged): the browser then sees the request fail, as it would with the server down.
    pub async fn allows(&self, origin: &str) -> bool {
        match self.codes().await {
            Ok(snapshot) => tally_core::origin::any_code_allows(
                snapshot.codes.iter().map(Vec::as_slice),
                origin,
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the handshake codes for a CORS check");
                false
            }
        }
    }

    async fn codes(&self) -> Result<Arc<Snapshot>, tally_store::StoreError> {
        let version = self.store.config_version();
        if let Some(current) = self
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|s| version.is_some() && s.version == version)
        {
            return Ok(current.clone());
        }
        let codes = self
            .store
            .handshakes()
            .await?
            .into_iter()
            .map(|h| h.validation.domains)
            .filter(|domains| !domains.is_empty())
            .collect();
        let fresh = Arc::new(Snapshot { version, codes });
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }
}
