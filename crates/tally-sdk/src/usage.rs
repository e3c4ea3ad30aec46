//! Usage counted per 3-minute UTC slice. The open slice accumulates; a closed slice becomes a
//! report whose id is fixed once, so however often it is resent the server counts it once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tally_proto::UnixSeconds;
use tally_proto::slice::{slice_end, slice_of};
use tally_proto::wire::UsageReport;

/// Unsent reports older than this are dropped.
pub const RETENTION_SECONDS: i64 = 30 * 86_400;

/// The counters of the slice in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlice {
    pub slice: i64,
    pub counts: BTreeMap<String, u64>,
}

/// Everything not yet acknowledged by a server, persisted as `usage.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBook {
    pub open: Option<OpenSlice>,
    pub pending: Vec<UsageReport>,
}

impl UsageBook {
    /// Adds `count` to `feature` in the slice of `now`, closing an older open slice first.
    pub fn record(&mut self, now: UnixSeconds, feature: &str, count: u64) {
        let slice = slice_of(now);
        if self.open.as_ref().is_some_and(|o| o.slice != slice) {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| OpenSlice {
            slice,
            counts: BTreeMap::new(),
        });
        let c = open.counts.entry(feature.to_owned()).or_insert(0);
        *c = c.saturating_add(count);
    }

    /// Turns the open slice, if it has counts, into a pending report with a new id.
    pub fn close_open(&mut self) {
        if let Some(open) = self.open.take()
            && !open.counts.is_empty()
        {
            self.pending.push(UsageReport {
                report_id: uuid::Uuid::now_v7().to_string(),
                slice: open.slice,
                counts: open.counts,
            });
        }
    }

    /// Drops pending reports whose slice ended more than the retention period before `now`.
    pub fn expire(&mut self, now: UnixSeconds) -> usize {
        let before = self.pending.len();
        self.pending
            .retain(|r| slice_end(r.slice) > now - RETENTION_SECONDS);
        before - self.pending.len()
    }

    /// Removes the reports a server acknowledged.
    pub fn acknowledge(&mut self, ids: &[String]) {
        self.pending.retain(|r| !ids.contains(&r.report_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_close_into_reports_with_fixed_ids() {
        let mut b = UsageBook::default();
        b.record(0, "scan", 2);
        b.record(179, "scan", 1);
        assert!(b.pending.is_empty());
        b.record(180, "page", 1);
        assert_eq!(b.pending.len(), 1);
        assert_eq!(b.pending[0].slice, 0);
        assert_eq!(b.pending[0].counts["scan"], 3);
        let id = b.pending[0].report_id.clone();
        b.close_open();
        assert_eq!(b.pending.len(), 2);
        assert_eq!(b.pending[0].report_id, id);
        b.acknowledge(&[id]);
        assert_eq!(b.pending.len(), 1);
    }

    #[test]
    fn old_reports_expire_after_thirty_days() {
        let mut b = UsageBook::default();
        b.record(0, "scan", 1);
        b.close_open();
        assert_eq!(b.expire(180 + RETENTION_SECONDS - 1), 0);
        assert_eq!(b.expire(180 + RETENTION_SECONDS), 1);
        assert!(b.pending.is_empty());
    }
}
