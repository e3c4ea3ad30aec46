//! The report session an authorization opens: usage reports travel to the same server encrypted
//! with a symmetric key exported from the authorization, with no hello and no public-key work.
//! Reports are accepted only in a session: its ticket proves the server authorized this device.
//!
//! The session is kept in the state directory (`session.json`), so a restarted product reports
//! without authorizing again. Every message number is taken under the state lock and written
//! before the message leaves, so two processes sharing the directory never send the same one.

use serde::{Deserialize, Serialize};
use tally_crypto::session::SessionKey;
use tally_proto::wire::{ReportRequest, ReportResponse, SessionGrant, UsageReport};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::state::SESSION;
use crate::transport::CallError;

/// Seconds before the server's expiry at which the client stops using a session, so that a
/// report is not refused on the way.
const EXPIRY_MARGIN: i64 = 60;

/// A report session as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSession {
    base: String,
    ticket: String,
    /// The session key (base64). It only lets this device report as itself.
    key: String,
    /// Server time.
    expires_at: UnixSeconds,
    /// Server time minus local time.
    offset: i64,
    /// Number of the last message sent.
    seq: u64,
}

/// What became of an attempt to send reports in the session.
pub(crate) enum SessionSend {
    /// The server answered.
    Answered(ReportResponse),
    /// No usable session (none, expired, unknown to the server): authorize to open a new one,
    /// then send again.
    NoSession,
    /// The session's server did not answer (the session is given up): authorize with the next
    /// server that answers, then send again.
    Unreachable(String),
    /// The server refused the request (sealed): e.g. `no_live_place`.
    Refused(SdkError),
}

impl Client {
    /// Keeps the report session an authorization at `base` opened.
    pub(crate) fn open_report_session(
        &self,
        base: &str,
        granted: SessionGrant,
        key: SessionKey,
        offset: i64,
    ) -> SdkResult<()> {
        let lock = self.state.lock()?;
        lock.write(
            SESSION,
            &StoredSession {
                base: base.to_owned(),
                ticket: granted.ticket,
                key: tally_crypto::b64_encode(key.as_bytes()),
                expires_at: granted.expires_at,
                offset,
                seq: 0,
            },
        )
    }

    /// Sends `reports` in the report session.
    pub(crate) fn report_in_session(&self, reports: &[UsageReport]) -> SdkResult<SessionSend> {
        let Some((session, key)) = self.next_message()? else {
            return Ok(SessionSend::NoSession);
        };
        let request = ReportRequest {
            sent_at: self.clock.now().saturating_add(session.offset),
            reports: reports.to_vec(),
        };
        let result =
            self.transport
                .in_session(&session.base, &session.ticket, session.seq, &key, &request);
        let retire = |why: &str| -> SdkResult<SessionSend> {
            tracing::debug!(why, "report session given up; authorizing again");
            self.state.lock()?.remove(SESSION)?;
            Ok(SessionSend::NoSession)
        };
        match result {
            Ok(reply) => Ok(SessionSend::Answered(reply)),
            Err(CallError::Refused(body) | CallError::Denied(body))
                if matches!(
                    body.error_code(),
                    Some(
                        ErrorCode::SessionExpired
                            | ErrorCode::StaleRequest
                            | ErrorCode::ReplayedRequest
                            | ErrorCode::BadEnvelope
                    )
                ) =>
            {
                retire(&body.name)
            }
            Err(CallError::Denied(body)) => Ok(SessionSend::Refused(SdkError::from_server(&body))),
            Err(CallError::Refused(body)) => Err(SdkError::from_server(&body)),
            Err(CallError::Unreachable(problem)) => {
                retire(&problem)?;
                Ok(SessionSend::Unreachable(problem))
            }
        }
    }

    /// Takes the next message number of a usable session, written to disk before it is used.
    fn next_message(&self) -> SdkResult<Option<(StoredSession, SessionKey)>> {
        let lock = self.state.lock()?;
        let Some(mut session) = lock.read::<StoredSession>(SESSION)? else {
            return Ok(None);
        };
        // A session opened with a server this configuration no longer names is not used.
        if !self.config.servers.contains(&session.base) {
            return Ok(None);
        }
        let sent_at = self.clock.now().saturating_add(session.offset);
        let key = tally_crypto::b64_decode(&session.key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok());
        let (Some(key), true) = (key, sent_at < session.expires_at - EXPIRY_MARGIN) else {
            lock.remove(SESSION)?;
            return Ok(None);
        };
        session.seq = session.seq.saturating_add(1);
        lock.write(SESSION, &session)?;
        Ok(Some((session, SessionKey::from_bytes(key))))
    }
}
