//! HTTP to one server: the public hello, and sealed requests whose replies only this client can
//! open. Every HTTP status is read as an answer; only a missing or unintelligible answer is a
//! transport failure.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_crypto::envelope::{ENVELOPE_VERSION, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::{Direction, SessionKey};
use tally_proto::ErrorBody;
use tally_proto::wire::{
    PATH_HELLO, PATH_SESSION_REPORT, PROTOCOL_VERSION, Reply, SealedResponse, ServerHello,
    SessionEnvelope,
};

/// Largest answer read from a server.
const MAX_RESPONSE_BYTES: u64 = 8 << 20;

/// Why a call to one server did not produce a result.
#[derive(Debug)]
pub enum CallError {
    /// No usable answer (connection refused, timeout, DNS, TLS, not a Tally answer): the next
    /// server may be tried and the cached grant used.
    Unreachable(String),
    /// The server answered with a stable error in plain JSON (it could not open the request, or
    /// it is not the server it claims to be: anyone on the way can write such an answer).
    Refused(ErrorBody),
    /// The server answered with a stable error sealed with the request's key: only the server
    /// that holds the key the request was sealed to can have written it.
    Denied(ErrorBody),
}

pub struct Transport {
    agent: ureq::Agent,
}

impl Transport {
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tally-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent }
    }

    fn url(base: &str, path: &str) -> String {
        format!("{}{path}", base.trim_end_matches('/'))
    }

    /// `GET /api/v2/hello`. The answer is not trusted yet: see [`crate::verify::certified`].
    pub fn hello(&self, base: &str) -> Result<ServerHello, CallError> {
        let unreachable = |what: String| CallError::Unreachable(format!("{base}: {what}"));
        let mut resp = self
            .agent
            .get(&Self::url(base, PATH_HELLO))
            .call()
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let body = read_body(&mut resp).map_err(&unreachable)?;
        if status.is_success() {
            let hello: ServerHello = serde_json::from_slice(&body)
                .map_err(|e| unreachable(format!("not a Tally server ({e})")))?;
            if hello.protocol != PROTOCOL_VERSION {
                return Err(unreachable(format!(
                    "the server speaks protocol {}, this SDK {PROTOCOL_VERSION}",
                    hello.protocol
                )));
            }
            return Ok(hello);
        }
        if status.as_u16() == 404 {
            return Err(unreachable(format!(
                "no protocol {PROTOCOL_VERSION} here (HTTP 404): an older Tally server, or not a Tally server"
            )));
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => Err(CallError::Refused(e)),
            Err(_) => Err(unreachable(format!("HTTP {status} without a Tally answer"))),
        }
    }

    /// Seals `request` to `server_key` for `purpose`, posts it to `path` and opens the reply.
    /// Also returns the report-session key of this request, which an authorization's ticket
    /// unlocks (see `tally_crypto::session`).
    pub fn sealed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        purpose: &str,
        server_key: &EncryptionPublicKey,
        request: &Req,
    ) -> Result<(Resp, SessionKey), CallError> {
        let unreachable = |what: String| CallError::Unreachable(format!("{base}: {what}"));
        let plain = serde_json::to_vec(request).map_err(|e| unreachable(e.to_string()))?;
        let (envelope, reply_key) =
            seal_request(server_key, purpose, &plain).map_err(|e| unreachable(e.to_string()))?;
        let body = serde_json::to_vec(&envelope).map_err(|e| unreachable(e.to_string()))?;
        let reply = self.post(base, path, &body, |sealed| reply_key.open(sealed))?;
        Ok((reply, reply_key.session_key()))
    }

    /// Sends `request` as message `seq` of a report session and opens the reply.
    pub fn in_session<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        ticket: &str,
        seq: u64,
        key: &SessionKey,
        request: &Req,
    ) -> Result<Resp, CallError> {
        let unreachable = |what: String| CallError::Unreachable(format!("{base}: {what}"));
        let plain = serde_json::to_vec(request).map_err(|e| unreachable(e.to_string()))?;
        let envelope = SessionEnvelope {
            v: ENVELOPE_VERSION,
            ticket: ticket.to_owned(),
            seq,
            ct: key
                .seal(Direction::ToServer, seq, ticket, &plain)
                .map_err(|e| unreachable(e.to_string()))?,
        };
        let body = serde_json::to_vec(&envelope).map_err(|e| unreachable(e.to_string()))?;
        self.post(base, PATH_SESSION_REPORT, &body, |sealed| {
            key.open(Direction::ToClient, seq, ticket, &sealed.ct)
        })
    }

    /// Posts `body` and reads the answer: sealed (opened with `open`) whatever the status, which
    /// only mirrors the error inside; or a plain error when the server could not open the request.
    fn post<Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &[u8],
        open: impl FnOnce(&SealedResponse) -> Result<Vec<u8>, tally_crypto::CryptoError>,
    ) -> Result<Resp, CallError> {
        let unreachable = |what: String| CallError::Unreachable(format!("{base}: {what}"));
        let mut resp = self
            .agent
            .post(&Self::url(base, path))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = read_body(&mut resp).map_err(&unreachable)?;
        if let Ok(sealed) = serde_json::from_slice::<SealedResponse>(&bytes) {
            let plain = open(&sealed)
                .map_err(|_| unreachable("the reply could not be decrypted".into()))?;
            return match serde_json::from_slice::<Reply<Resp>>(&plain) {
                Ok(Reply::Ok(r)) => Ok(r),
                Ok(Reply::Err(e)) => Err(CallError::Denied(e)),
                Err(e) => Err(unreachable(format!("unexpected reply: {e}"))),
            };
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(CallError::Refused(e)),
            Err(_) => Err(unreachable(format!("HTTP {status} without a Tally answer"))),
        }
    }
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> Result<Vec<u8>, String> {
    resp.body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| format!("cannot read the answer: {e}"))
}
