//! Usage recording and delivery. Counters are durable before `record_usage` returns; reports
//! leave the device only once a server acknowledged their ids.

use std::collections::HashSet;

use tally_proto::ErrorCode;
use tally_proto::wire::{
    MAX_REPORTS_PER_REQUEST, PATH_REPORT, ReportRequest, ReportResponse, UsageReport,
};

use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::rollback;
use crate::session::{Failure, Session, no_server_code};
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
    /// another report), drops reports older than 30 days, and sends the rest to the first server
    /// that answers. Acknowledged reports are removed; the others stay, with their ids, for the
    /// next call.
    ///
    /// Returns `ServerUnreachable` (or `ServerNotTrusted`) when no report could be delivered
    /// because no server answered; the reports are kept. When a server answered for some
    /// reports only, the outcome says how many are still `pending`. A refusal by the server is
    /// returned as an error, the reports kept. With nothing to send no server is contacted.
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
        if remaining.is_empty() {
            return Ok(outcome);
        }
        let handshake_code = self.report_handshake_code()?;
        // The report session of the last authorization needs no hello and no public-key work.
        while !remaining.is_empty() {
            let n = remaining.len().min(MAX_REPORTS_PER_REQUEST);
            let chunk = &remaining[..n];
            match self.report_in_session(&handshake_code, chunk) {
                Some(Ok(r)) => {
                    self.acknowledge(chunk, &r, &mut outcome)?;
                    remaining.drain(..n);
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        let mut problems = Vec::new();
        let mut untrusted = false;
        let servers = if remaining.is_empty() {
            &[][..]
        } else {
            &self.config.servers[..]
        };
        for base in servers {
            let mut session = match Session::open(&self.transport, &*self.clock, &self.vendor, base)
            {
                Ok(s) => s,
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Unreachable(m)) => {
                    problems.push(m);
                    continue;
                }
                Err(Failure::Untrusted(m)) => {
                    untrusted = true;
                    problems.push(m);
                    continue;
                }
            };
            while !remaining.is_empty() {
                let n = remaining.len().min(MAX_REPORTS_PER_REQUEST);
                let chunk = &remaining[..n];
                let reply: Result<(ReportResponse, _), _> =
                    session.call(PATH_REPORT, "report", |stamp| ReportRequest {
                        stamp,
                        device_uuid: self.device_uuid.clone(),
                        organization: self.config.organization.clone(),
                        handshake_code: handshake_code.clone(),
                        reports: chunk.to_vec(),
                    });
                match reply {
                    Ok((r, _)) => {
                        self.acknowledge(chunk, &r, &mut outcome)?;
                        remaining.drain(..n);
                    }
                    Err(Failure::Refused(e)) => return Err(e),
                    Err(Failure::Unreachable(m) | Failure::Untrusted(m)) => {
                        problems.push(m);
                        break;
                    }
                }
            }
            if remaining.is_empty() {
                break;
            }
        }
        outcome.pending = {
            let lock = self.state.lock()?;
            lock.read::<UsageBook>(USAGE)?
                .map(|b| b.pending.len())
                .unwrap_or_default()
        };
        if outcome.sent == 0 {
            let code = no_server_code(untrusted);
            return Err(SdkError::new(
                code,
                format!(
                    "{}; {} usage reports kept for later",
                    problems.join("; "),
                    outcome.pending
                ),
            ));
        }
        Ok(outcome)
    }

    /// Removes from disk the reports of `chunk` the server acknowledged.
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
        outcome.sent += chunk.len();
        outcome.acknowledged += accepted.len() + duplicates.len();
        outcome.duplicates += duplicates.len();
        let lock = self.state.lock()?;
        let mut book: UsageBook = lock.read(USAGE)?.unwrap_or_default();
        book.acknowledge(&accepted.union(&duplicates).copied().collect());
        lock.write(USAGE, &book)
    }

    /// Reports name a handshake code: the configured one, else the one the cached grant was
    /// issued for (the server resolved it from the organization or the trial).
    fn report_handshake_code(&self) -> SdkResult<String> {
        if !self.config.handshake_code.is_empty() {
            return Ok(self.config.handshake_code.clone());
        }
        let lock = self.state.lock()?;
        match self.cached_grant(&lock)? {
            Some(verified) => Ok(verified?.handshake_code),
            None => Err(SdkError::new(
                ErrorCode::NoGrant,
                "authorize once before sending usage reports: they name the handshake code of the grant",
            )),
        }
    }
}
