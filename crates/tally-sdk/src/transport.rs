//! HTTP to one server: the public hello and sealed requests whose replies only this client can
//! open.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_crypto::envelope::seal_request;
use tally_crypto::keys::EncryptionPublicKey;
use tally_proto::ErrorBody;
use tally_proto::wire::{PATH_HELLO, Reply, SealedResponse, ServerHello};

/// Why a call to one server did not produce a result.
#[derive(Debug)]
pub enum CallError {
    /// No usable answer (connection, timeout, garbage): try the next server.
    Unreachable(String),
    /// The server answered with a stable error.
    Refused(ErrorBody),
    /// The server could not show a license activated for it by the vendor: try the next one,
    /// but never believe it.
    Untrusted(String),
}

pub struct Transport {
    agent: ureq::Agent,
}

impl Transport {
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self { agent }
    }

    fn url(base: &str, path: &str) -> String {
        format!("{}{path}", base.trim_end_matches('/'))
    }

    pub fn hello(&self, base: &str) -> Result<ServerHello, CallError> {
        let mut resp = self
            .agent
            .get(&Self::url(base, PATH_HELLO))
            .call()
            .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
        let ok = resp.status().is_success();
        let body = resp
            .body_mut()
            .read_to_vec()
            .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
        if !ok {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => CallError::Refused(e),
                Err(_) => {
                    CallError::Unreachable(format!("{base}: HTTP {} from hello", resp.status()))
                }
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| CallError::Unreachable(format!("{base}: not a Tally server ({e})")))
    }

    /// Seals `request` to `server_key`, posts it and opens the sealed reply.
    pub fn sealed<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        purpose: &str,
        server_key: &EncryptionPublicKey,
        request: &Req,
    ) -> Result<Resp, CallError> {
        let garbage = |what: String| CallError::Unreachable(format!("{base}: {what}"));
        let plain = serde_json::to_vec(request).map_err(|e| garbage(e.to_string()))?;
        let (envelope, reply_key) =
            seal_request(server_key, purpose, &plain).map_err(|e| garbage(e.to_string()))?;
        let body = serde_json::to_vec(&envelope).map_err(|e| garbage(e.to_string()))?;
        let mut resp = self
            .agent
            .post(&Self::url(base, path))
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
        let bytes = resp
            .body_mut()
            .read_to_vec()
            .map_err(|e| garbage(e.to_string()))?;
        if let Ok(sealed) = serde_json::from_slice::<SealedResponse>(&bytes) {
            let plain = reply_key
                .open(&sealed)
                .map_err(|_| garbage("the reply could not be decrypted".into()))?;
            return match serde_json::from_slice::<Reply<Resp>>(&plain) {
                Ok(Reply::Ok(r)) => Ok(r),
                Ok(Reply::Err(e)) => Err(CallError::Refused(e)),
                Err(e) => Err(garbage(format!("unexpected reply: {e}"))),
            };
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(CallError::Refused(e)),
            Err(_) => Err(garbage(format!(
                "HTTP {} without a Tally answer",
                resp.status()
            ))),
        }
    }
}
