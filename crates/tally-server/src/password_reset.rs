//! A new portal password set from the server's machine (`tally admin reset-password`), for an
//! owner who lost theirs. It works on the store directly, never over HTTP: whoever can open the
//! data directory owns the server already. Every portal session is signed out, and the audit log
//! records the reset.

use std::sync::Arc;

use tally_core::Clock;
use tally_store::{AuditEntry, Store, StoreError};

use crate::passwords::PasswordGuard;
use crate::portal::auth::{PASSWORD_KEY, check_new_password};

/// Why the password was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The password breaks a rule; the message says which, as the portal would.
    #[error("{0}")]
    Rejected(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces the portal password with `password` (typed twice: `confirm`) and signs out every
/// portal session.
pub async fn reset_portal_password(
    store: &dyn Store,
    clock: Arc<dyn Clock>,
    password: &str,
    confirm: &str,
) -> Result<(), ResetError> {
    check_new_password(password, confirm).map_err(ResetError::Rejected)?;
    let hash = PasswordGuard::new(clock.clone())
        .map_err(ResetError::Hash)?
        .hash(password)
        .await
        .map_err(ResetError::Hash)?;
    store.put_setting(PASSWORD_KEY, &hash).await?;
    store.delete_all_sessions().await?;
    let entry = AuditEntry {
        at: clock.now(),
        actor: "cli".into(),
        action: "portal.password_reset".into(),
        detail: "password set on the server's machine; every session signed out".into(),
    };
    if let Err(e) = store.record_audit(entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    Ok(())
}
