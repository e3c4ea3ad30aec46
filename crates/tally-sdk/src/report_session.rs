//! The report session an authorization opens: later usage reports to the same server travel
//! encrypted with a symmetric key exported from the authorization, with no hello and no
//! public-key work. It lives in memory only; without it (new process, expired, refused) reports
//! take the sealed path of `report.rs`.

use tally_crypto::session::SessionKey;
use tally_proto::wire::{ReportRequest, ReportResponse, RequestStamp, SessionGrant, UsageReport};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::transport::CallError;

/// Seconds before the server's expiry at which the client stops using a session, so that a
/// report is not refused on the way.
const EXPIRY_MARGIN: i64 = 60;

pub(crate) struct ReportSession {
    base: String,
    handshake_code: String,
    ticket: String,
    key: SessionKey,
    /// Server time.
    expires_at: UnixSeconds,
    /// Server time minus local time.
    offset: i64,
    /// Number of the last message sent.
    seq: u64,
}

impl Client {
    /// Keeps the report session an authorization at `base` opened.
    pub(crate) fn open_report_session(
        &self,
        base: &str,
        handshake_code: &str,
        granted: SessionGrant,
        key: SessionKey,
        offset: i64,
    ) {
        *self
            .report_session
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(ReportSession {
            base: base.to_owned(),
            handshake_code: handshake_code.to_owned(),
            ticket: granted.ticket,
            key,
            expires_at: granted.expires_at,
            offset,
            seq: 0,
        });
    }

    /// Sends `reports` in the open report session. `None` when there is no usable session or it
    /// failed in a way the sealed path may cure (expired, unknown to the server, stale clock,
    /// unreachable); the session is then dropped.
    pub(crate) fn report_in_session(
        &self,
        handshake_code: &str,
        reports: &[UsageReport],
    ) -> Option<SdkResult<ReportResponse>> {
        let mut guard = self
            .report_session
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let session = guard.as_mut()?;
        let sent_at = self.clock.now().saturating_add(session.offset);
        if session.handshake_code != handshake_code || sent_at >= session.expires_at - EXPIRY_MARGIN
        {
            *guard = None;
            return None;
        }
        let request_id = match tally_crypto::random_id() {
            Ok(id) => id,
            Err(e) => return Some(Err(SdkError::new(ErrorCode::Internal, e.to_string()))),
        };
        session.seq += 1;
        let request = ReportRequest {
            stamp: RequestStamp {
                request_id,
                sent_at,
            },
            device_uuid: self.device_uuid.clone(),
            organization: self.config.organization.clone(),
            handshake_code: handshake_code.to_owned(),
            reports: reports.to_vec(),
        };
        let result = self.transport.in_session(
            &session.base,
            &session.ticket,
            session.seq,
            &session.key,
            &request,
        );
        match result {
            Ok(reply) => Some(Ok(reply)),
            Err(CallError::Refused(body))
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
                tracing::debug!(
                    code = body.code,
                    "report session refused; using the sealed path"
                );
                *guard = None;
                None
            }
            Err(CallError::Refused(body)) => Some(Err(SdkError::from_server(&body))),
            Err(CallError::Unreachable(problem)) => {
                tracing::debug!(%problem, "report session unreachable; trying every server");
                *guard = None;
                None
            }
        }
    }
}
