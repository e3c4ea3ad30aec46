//! Authorization outcomes per handshake code and minute, gathered in memory and written to the
//! store in one batch (every few seconds and before the alert evaluator reads them) instead of
//! one write per authorization. They feed the failed-authorization alert only; a crash loses at
//! most the last few seconds of these counts, never an acknowledged grant or report.

use std::collections::HashMap;
use std::sync::Mutex;

use tally_proto::UnixSeconds;
use tally_store::{AuthOutcomes, Store, StoreResult};

/// How often the gathered outcomes are written.
pub const FLUSH_EVERY_SECONDS: u64 = 5;

#[derive(Default)]
pub struct OutcomeTally {
    counts: Mutex<HashMap<(String, i64), (u64, u64)>>,
}

impl OutcomeTally {
    /// Counts one authorization of `code` at `at`.
    pub fn add(&self, code: &str, ok: bool, at: UnixSeconds) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = counts
            .entry((code.to_owned(), at.div_euclid(60)))
            .or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    /// Writes what was gathered. On failure the counts are put back for the next attempt.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<()> {
        let taken = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.is_empty() {
            return Ok(());
        }
        let batch: Vec<AuthOutcomes> = taken
            .iter()
            .map(|((code, minute), (ok, failed))| AuthOutcomes {
                handshake_code: code.clone(),
                minute: *minute,
                ok: *ok,
                failed: *failed,
            })
            .collect();
        let result = store.record_auth_outcomes(batch).await;
        if result.is_err() {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            for (key, (ok, failed)) in taken {
                let entry = counts.entry(key).or_default();
                entry.0 += ok;
                entry.1 += failed;
            }
        }
        result
    }
}
