//! The audit log of administrative actions.

use std::sync::Arc;

use tally_store::{AuditEntry, Store};

use crate::fixtures::NOW;

pub async fn the_audit_log_lists_the_newest_entries_first_up_to_the_limit(store: Arc<dyn Store>) {
    assert!(store.audit_log(10).await.unwrap().is_empty());
    let entry = |n: i64| AuditEntry {
        // Two entries share each second: the later recorded is the newer.
        at: NOW + n / 2,
        actor: ["portal", "api", "cli"][n as usize % 3].into(),
        action: format!("action {n}"),
        detail: format!("détail ✓ {n}\nsecond line"),
    };
    for n in 0..5 {
        store.record_audit(entry(n)).await.unwrap();
    }
    assert_eq!(
        store.audit_log(3).await.unwrap(),
        [entry(4), entry(3), entry(2)]
    );
    assert_eq!(
        store.audit_log(10).await.unwrap(),
        [entry(4), entry(3), entry(2), entry(1), entry(0)]
    );
    assert!(store.audit_log(0).await.unwrap().is_empty());
}
