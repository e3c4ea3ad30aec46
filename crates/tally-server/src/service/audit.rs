//! The audit log: every administrative change, from the portal or the admin API.

use tally_store::AuditEntry;

use crate::state::AppState;

/// Records an action; a failure to record is logged, never shown to the admin as a failure of
/// the action itself (which has already happened).
pub async fn record(state: &AppState, actor: &str, action: &str, detail: String) {
    let entry = AuditEntry {
        at: state.now(),
        actor: actor.into(),
        action: action.into(),
        detail,
    };
    if let Err(e) = state.store.record_audit(entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}
