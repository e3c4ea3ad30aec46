//! Usage counted per 3-minute UTC slice. The open slice accumulates; closing it turns its
//! counters into reports whose ids are fixed once, so however often a report is resent the
//! server counts it once.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use tally_proto::UnixSeconds;
use tally_proto::slice::{slice_end, slice_of};
use tally_proto::wire::{MAX_FEATURE_LEN, MAX_FEATURES_PER_REPORT, UsageReport};

use crate::error::{SdkError, SdkResult};

/// Unsent reports whose slice ended longer ago than this are dropped.
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
    #[serde(default)]
    pub open: Option<OpenSlice>,
    /// Closed reports, oldest first.
    #[serde(default)]
    pub pending: Vec<UsageReport>,
}

/// Refuses feature names the server would refuse, before they are stored.
pub fn check_feature(feature: &str) -> SdkResult<()> {
    let ok = !feature.is_empty()
        && feature.len() <= MAX_FEATURE_LEN
        && feature.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(SdkError::invalid_input(format!(
            "feature `{}`: use 1 to {MAX_FEATURE_LEN} printable ASCII characters without spaces",
            feature.escape_default()
        )))
    }
}

impl UsageBook {
    /// Adds `count` to `feature` in the slice of `now`, closing an open slice of another time.
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

    /// Turns the open slice's counters into pending reports with new ids (several when it has
    /// more features than one report may carry).
    pub fn close_open(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let mut features = open.counts.into_iter().peekable();
        while features.peek().is_some() {
            let counts: BTreeMap<String, u64> =
                features.by_ref().take(MAX_FEATURES_PER_REPORT).collect();
            self.pending.push(UsageReport {
                report_id: uuid::Uuid::now_v7().to_string(),
                slice: open.slice,
                counts,
            });
        }
    }

    /// Drops pending reports whose slice ended more than [`RETENTION_SECONDS`] before `now`;
    /// returns how many.
    pub fn expire(&mut self, now: UnixSeconds) -> usize {
        let before = self.pending.len();
        self.pending
            .retain(|r| now.saturating_sub(slice_end(r.slice)) <= RETENTION_SECONDS);
        before - self.pending.len()
    }

    /// Removes the reports whose ids a server acknowledged; returns how many were removed.
    pub fn acknowledge(&mut self, ids: &HashSet<&str>) -> usize {
        let before = self.pending.len();
        self.pending.retain(|r| !ids.contains(r.report_id.as_str()));
        before - self.pending.len()
    }

    /// Reports waiting for a server, counting the open slice as the one report it will make.
    pub fn waiting(&self) -> usize {
        self.pending.len() + usize::from(self.open.as_ref().is_some_and(|o| !o.counts.is_empty()))
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
        assert_eq!(b.waiting(), 1);
        b.record(180, "page", 1);
        assert_eq!(b.pending.len(), 1);
        assert_eq!(b.pending[0].slice, 0);
        assert_eq!(b.pending[0].counts["scan"], 3);
        let id = b.pending[0].report_id.clone();
        b.close_open();
        b.close_open();
        assert_eq!(b.pending.len(), 2);
        assert_eq!(b.pending[0].report_id, id);
        assert!(
            b.pending[0].report_id < b.pending[1].report_id,
            "ids are time-ordered"
        );
        assert_eq!(b.acknowledge(&HashSet::from([id.as_str()])), 1);
        assert_eq!(b.pending.len(), 1);
    }

    #[test]
    fn a_slice_with_many_features_makes_several_reports() {
        let mut b = UsageBook::default();
        for i in 0..(MAX_FEATURES_PER_REPORT * 2 + 1) {
            b.record(0, &format!("f{i}"), 1);
        }
        b.close_open();
        let sizes: Vec<usize> = b.pending.iter().map(|r| r.counts.len()).collect();
        assert_eq!(sizes, [MAX_FEATURES_PER_REPORT, MAX_FEATURES_PER_REPORT, 1]);
        let ids: HashSet<&str> = b.pending.iter().map(|r| r.report_id.as_str()).collect();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let mut b = UsageBook::default();
        b.record(0, "scan", u64::MAX);
        b.record(0, "scan", 5);
        assert_eq!(b.open.unwrap().counts["scan"], u64::MAX);
    }

    #[test]
    fn old_reports_expire_after_thirty_days() {
        let mut b = UsageBook::default();
        b.record(0, "scan", 1);
        b.close_open();
        assert_eq!(b.expire(180 + RETENTION_SECONDS), 0);
        assert_eq!(b.expire(180 + RETENTION_SECONDS + 1), 1);
        assert!(b.pending.is_empty());
    }

    #[test]
    fn feature_names_are_checked() {
        check_feature("scan.symbology.qr").unwrap();
        check_feature(&"a".repeat(MAX_FEATURE_LEN)).unwrap();
        for bad in [
            "",
            "has space",
            "tab\t",
            "é",
            &"a".repeat(MAX_FEATURE_LEN + 1),
        ] {
            let e = check_feature(bad).unwrap_err();
            assert_eq!(e.code, tally_proto::ErrorCode::InvalidInput, "{bad:?}");
        }
    }
}
