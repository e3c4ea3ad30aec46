//! Usage recording and delivery. Counters are durable before `record_usage` returns; reports
//! leave the device only once a server acknowledged their ids.

use std::collections::HashSet;

use tally_proto::ErrorCode;
use tally_proto::wire::{MAX_REPORTS_PER_REQUEST, ReportResponse, UsageReport};

use crate::authorize::Unanswered;
use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::report_session::SessionSend;
use crate::rollback;
use crate::session::no_server_code;
use crate::state::USAGE;
use crate::usage::{UsageBook, check_feature};

/// The result of [`Client::flush`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Reports sent and answered in this call.
    pub sent: usize,
    /// Reports the server holds now, counted now or before; they are removed locally.
    pub acknowledged: usize,
    /// Of those, reports the server had counted before (a retry after a lost answer).
    pub duplicates: usize,
    /// Reports still waiting for a server.
    pub pending: usize,
    /// Reports dropped unsent because their slice ended more than 30 days ago.
    pub expired: usize,
    /// Reports the server refused for good (malformed); they were dropped.
    pub refused: usize,
    /// The server said the per-usage item of this device's grant is used up: the grant was
    /// forgotten.
    pub usage_exhausted: bool,
}

impl Client {
    /// Adds `count` uses of `feature` (e.g. `scan`, `scan.symbology.qr`) to the current 3-minute
    /// slice. The counter is on disk when this returns. Feature names are 1–128 printable ASCII
    /// characters without spaces (`InvalidInput` otherwise).
    pub fn record_usage(&self, feature: &str, count: u64) -> SdkResult<()> {
        check_feature(feature)?;
        let now = self.clock.now();
        let lock = self.state.lock()?;
        rollback::observe(&lock, now)?;
        if count == 0 {
            return Ok(());
        }
        let mut book: UsageBook = lock.read(USAGE)?.unwrap_or_default();
        book.record(now, feature, count);
        lock.write(USAGE, &book)
    }

    /// Closes the current slice's counters into a report (later usage in the same slice makes
    /// another report), drops reports older than 30 days, and sends the rest in the report
    /// session of the last authorization; without a usable session (none yet, expired, or the
    /// server no longer knows it or this device's place) it authorizes first, once. Reports the
    /// server acknowledged are removed, as are reports it refused for good (malformed; logged);
    /// the others stay, with their ids, for the next call. When the server says a per-usage
    /// item of this device's grant is used up, the grant is forgotten: [`Client::check`] and
    /// the offline path refuse with `UsageQuotaExceeded` until a new authorization succeeds.
    ///
    /// Returns `ServerUnreachable` (or `ServerNotTrusted`) when no report could be delivered
    /// because no server answered, and a server's refusal as an error; the reports are kept
    /// either way. With nothing to send no server is contacted.
    pub fn flush(&self) -> SdkResult<FlushOutcome> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let (mut remaining, expired) = {
            let now = self.clock.now();
            let lock = self.state.lock()?;
            rollback::observe(&lock, now)?;
            let mut book: UsageBook = lock.read(USAGE)?.unwrap_or_default();
            book.close_open();
            let expired = book.expire(now);
            lock.write(USAGE, &book)?;
            (book.pending, expired)
        };
        if expired > 0 {
            tracing::warn!(expired, "usage reports older than 30 days dropped unsent");
        }
        let mut outcome = FlushOutcome {
            expired,
            pending: remaining.len(),
            ..FlushOutcome::default()
        };
        let mut authorized = false;
        while !remaining.is_empty() {
            let n = remaining.len().min(MAX_REPORTS_PER_REQUEST);
            let chunk = &remaining[..n];
            let problem = match self.report_in_session(chunk)? {
                SessionSend::Answered(reply) => {
                    self.acknowledge(chunk, &reply, &mut outcome)?;
                    remaining.drain(..n);
                    continue;
                }
                SessionSend::NoSession => SdkError::new(
                    ErrorCode::SessionExpired,
                    "the server opened no report session for this device",
                ),
                SessionSend::Unreachable(problem) => SdkError::new(
                    ErrorCode::ServerUnreachable,
                    format!(
                        "{problem}; {} usage reports kept for later",
                        remaining.len()
                    ),
                ),
                SessionSend::Refused(e) if e.code == ErrorCode::NoLivePlace => e,
                SessionSend::Refused(e) => return Err(e),
            };
            if authorized {
                return Err(problem);
            }
            authorized = true;
            match self.authorize_online() {
                Ok(_) => {}
                Err(Unanswered::Refused(e)) => return Err(e),
                Err(Unanswered::Offline {
                    problems,
                    untrusted,
                }) => {
                    return Err(SdkError::new(
                        no_server_code(untrusted),
                        format!(
                            "{problems}; {} usage reports kept for later",
                            remaining.len()
                        ),
                    ));
                }
            }
        }
        outcome.pending = {
            let lock = self.state.lock()?;
            lock.read::<UsageBook>(USAGE)?
                .map(|b| b.pending.len())
                .unwrap_or_default()
        };
        Ok(outcome)
    }

    /// Removes from disk the reports of `chunk` the server acknowledged or refused for good, and
    /// forgets the grant when its per-usage item is used up.
    fn acknowledge(
        &self,
        chunk: &[UsageReport],
        reply: &ReportResponse,
        outcome: &mut FlushOutcome,
    ) -> SdkResult<()> {
        let sent: HashSet<&str> = chunk.iter().map(|r| r.report_id.as_str()).collect();
        let accepted: HashSet<&str> = reply
            .accepted
            .iter()
            .map(String::as_str)
            .filter(|id| sent.contains(id))
            .collect();
        let duplicates: HashSet<&str> = reply
            .duplicates
            .iter()
            .map(String::as_str)
            .filter(|id| sent.contains(id) && !accepted.contains(id))
            .collect();
        let mut refused: HashSet<&str> = HashSet::new();
        for r in &reply.refused {
            if let Some(id) = sent.get(r.report_id.as_str()) {
                tracing::warn!(report = %id, code = r.code, reason = %r.message, "usage report refused by the server for good; dropped");
                refused.insert(id);
            }
        }
        outcome.sent += chunk.len();
        outcome.acknowledged += accepted.len() + duplicates.len();
        outcome.duplicates += duplicates.len();
        outcome.refused += refused.len();
        {
            let lock = self.state.lock()?;
            let mut book: UsageBook = lock.read(USAGE)?.unwrap_or_default();
            let done: HashSet<&str> = accepted
                .iter()
                .chain(&duplicates)
                .chain(&refused)
                .copied()
                .collect();
            book.acknowledge(&done);
            lock.write(USAGE, &book)?;
        }
        if !reply.exhausted.is_empty() {
            let held = {
                let lock = self.state.lock()?;
                self.cached_grant(&lock)?.and_then(Result::ok)
            };
            if let Some(grant) = held
                && grant
                    .items
                    .iter()
                    .any(|i| reply.exhausted.contains(&i.item_id))
            {
                outcome.usage_exhausted = true;
                let mut refusal = SdkError::new(
                    ErrorCode::UsageQuotaExceeded,
                    format!(
                        "the usage quota of item {} is used up",
                        reply.exhausted.join(", ")
                    ),
                );
                refusal.server_code = Some(ErrorCode::UsageQuotaExceeded.code());
                self.forget_grant(&refusal)?;
            }
        }
        Ok(())
    }
}
