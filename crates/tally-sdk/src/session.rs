//! One conversation with one server: its hello checked against the vendor key, then sealed
//! calls stamped with the client's estimate of the server clock.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_core::Clock;
use tally_crypto::VerifyingKey;
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::SessionKey;
use tally_proto::ErrorCode;
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::RequestStamp;

use crate::error::SdkError;
use crate::transport::{CallError, Transport};
use crate::verify;

/// Why one server gave no result.
#[derive(Debug)]
pub enum Failure {
    /// No answer: try the next server, then the cache.
    Unreachable(String),
    /// It answered, but could not prove the vendor activated a license for it: its answers are
    /// worth nothing, so it is treated as absent (next server, then the cache).
    Untrusted(String),
    /// A refusal by the server, or an answer that failed verification: returned as is.
    Refused(SdkError),
    /// A refusal sealed by the server the request was sealed to: returned as is, and it may end
    /// the device's right to its cached grant (see `SdkError::ends_grant`).
    Denied(SdkError),
}

/// The code for "no server gave an answer": not trusted when one answered but could not prove
/// the vendor's activation, else unreachable.
pub fn no_server_code(untrusted: bool) -> ErrorCode {
    if untrusted {
        ErrorCode::ServerNotTrusted
    } else {
        ErrorCode::ServerUnreachable
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unreachable(m) => Failure::Unreachable(m),
            CallError::Refused(body) => Failure::Refused(SdkError::from_server(&body)),
            CallError::Denied(body) => Failure::Denied(SdkError::from_server(&body)),
        }
    }
}

pub struct Session<'a> {
    transport: &'a Transport,
    clock: &'a dyn Clock,
    pub base: &'a str,
    /// The identity the hello showed and a vendor-signed certificate confirmed.
    pub identity: ServerPublicIdentity,
    encryption_key: EncryptionPublicKey,
    /// Server time minus local time, added to request timestamps.
    offset: i64,
}

impl<'a> Session<'a> {
    /// Fetches the hello of `base` and checks a certificate signed by `vendor` names its keys.
    pub fn open(
        transport: &'a Transport,
        clock: &'a dyn Clock,
        vendor: &VerifyingKey,
        base: &'a str,
    ) -> Result<Self, Failure> {
        let hello = transport.hello(base)?;
        let offset = hello.server_time.saturating_sub(clock.now());
        let identity = ServerPublicIdentity {
            uuid: hello.uuid,
            signing_key: hello.signing_key,
            encryption_key: hello.encryption_key,
        };
        if let Err(problem) = verify::certified(vendor, &identity, hello.certificate.as_deref()) {
            return Err(Failure::Untrusted(format!("{base}: {problem}")));
        }
        let encryption_key = EncryptionPublicKey::from_base64(&identity.encryption_key)
            .map_err(|e| Failure::Untrusted(format!("{base}: {e}")))?;
        Ok(Self {
            transport,
            clock,
            base,
            identity,
            encryption_key,
            offset,
        })
    }

    /// Server time minus local time, as learned from this server.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Sends a sealed request built by `build` around a fresh stamp. When the server finds the
    /// timestamp stale, the offset is corrected from its clock and the request is sent once more
    /// in a new envelope.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        purpose: &str,
        build: impl Fn(RequestStamp) -> Req,
    ) -> Result<(Resp, SessionKey), Failure> {
        let mut retried = false;
        loop {
            let stamp = RequestStamp {
                request_id: tally_crypto::random_id().map_err(|e| {
                    Failure::Refused(SdkError::new(ErrorCode::Internal, e.to_string()))
                })?,
                sent_at: self.clock.now().saturating_add(self.offset),
            };
            match self.transport.sealed(
                self.base,
                path,
                purpose,
                &self.encryption_key,
                &build(stamp),
            ) {
                // The server seals this refusal (it opened the envelope); a plain one is accepted
                // too, as it only moves the clock offset for one more try.
                Err(CallError::Refused(body) | CallError::Denied(body))
                    if !retried && body.error_code() == Some(ErrorCode::StaleRequest) =>
                {
                    let Some(server_time) = body.server_time else {
                        return Err(Failure::Refused(SdkError::from_server(&body)));
                    };
                    tracing::debug!(
                        server = self.base,
                        server_time,
                        "correcting the clock offset"
                    );
                    self.offset = server_time.saturating_sub(self.clock.now());
                    retried = true;
                }
                other => return other.map_err(Failure::from),
            }
        }
    }
}
