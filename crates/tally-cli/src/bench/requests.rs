//! What the load generator sends: the target, protocol requests, envelopes sealed ahead and the
//! report sessions opened by authorizing each device once.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use tally_crypto::envelope::{ReplyKey, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::SessionKey;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, PATH_AUTHORIZE, Reply, ReportRequest, RequestStamp,
    SealedResponse, UsageReport, ValidationField,
};

use super::http::{connect, plain_error, send};
use super::load::{Tally, run_local};

/// Where a phase sends its requests.
#[derive(Clone)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    pub key: EncryptionPublicKey,
    pub organization: String,
    pub product: String,
    pub handshake_code: String,
    pub devices: usize,
    /// Prefix of the device ids, so that runs against the same server use distinct devices.
    pub device_prefix: String,
}

impl Target {
    pub fn device(&self, n: usize) -> String {
        format!("{}-{}", self.device_prefix, n % self.devices.max(1))
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn stamp(n: u64) -> RequestStamp {
    RequestStamp {
        request_id: format!("bench-{n}"),
        sent_at: now(),
    }
}

fn authorize_request(t: &Target, n: usize) -> AuthorizeRequest {
    AuthorizeRequest {
        stamp: stamp(n as u64),
        organization: t.organization.clone(),
        handshake_code: t.handshake_code.clone(),
        session_password: None,
        device_uuid: t.device(n),
        product: t.product.clone(),
        version: None,
        modules: vec![],
        validation: ValidationField::default(),
        friendly_name: None,
        buffer_days: None,
        instances: None,
    }
}

pub fn report_request(report_id: String) -> ReportRequest {
    ReportRequest {
        sent_at: now(),
        reports: vec![UsageReport {
            report_id,
            slice: tally_proto::slice::slice_of(now()),
            counts: [("scan".to_string(), 1u64)].into(),
        }],
    }
}

/// A report id as the SDK makes them: a UUID v7, so ids arrive in time order.
pub fn report_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One HPKE-sealed request ready to send.
pub struct Sealed {
    pub body: Bytes,
    pub reply_key: ReplyKey,
}

fn seal(t: &Target, purpose: &str, plain: &impl serde::Serialize) -> Result<Sealed, String> {
    let plain = serde_json::to_vec(plain).map_err(|e| e.to_string())?;
    let (envelope, reply_key) = seal_request(&t.key, purpose, &plain).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&envelope).map_err(|e| e.to_string())?;
    Ok(Sealed {
        body: body.into(),
        reply_key,
    })
}

/// The `n`-th sealed authorization (the only sealed request of the protocol).
pub fn seal_nth(t: &Target, n: usize) -> Result<Sealed, String> {
    seal(t, "authorize", &authorize_request(t, n))
}

/// Seals `count` requests of `phase` before the phase starts.
pub fn seal_pool(t: &Target, count: usize) -> Result<Vec<Sealed>, String> {
    (0..count).map(|n| seal_nth(t, n)).collect()
}

/// A device's report session, as its authorization opened it.
pub struct DeviceSession {
    pub ticket: String,
    pub key: SessionKey,
    pub seq: Cell<u64>,
}

/// Opens a report session for each of `target.devices` devices by authorizing it once.
pub fn open_sessions(target: &Target, connections: usize) -> Result<Vec<DeviceSession>, String> {
    let sessions: Rc<RefCell<Vec<DeviceSession>>> = Rc::new(RefCell::new(Vec::new()));
    let next = Rc::new(Cell::new(0usize));
    let failures: Rc<RefCell<Vec<String>>> = Rc::new(RefCell::new(Vec::new()));
    run_local(connections, |_| {
        let (sessions, next, failures, t) = (
            sessions.clone(),
            next.clone(),
            failures.clone(),
            target.clone(),
        );
        async move {
            let mut sender = match connect(&t.addr).await {
                Ok(s) => s,
                Err(e) => {
                    failures.borrow_mut().push(e);
                    return Tally::default();
                }
            };
            loop {
                let n = next.get();
                if n >= t.devices {
                    break;
                }
                next.set(n + 1);
                match open_one(&mut sender, &t, n).await {
                    Ok(s) => sessions.borrow_mut().push(s),
                    Err(e) => failures.borrow_mut().push(e),
                }
            }
            Tally::default()
        }
    });
    if let Some(e) = failures.borrow().first() {
        return Err(format!("opening report sessions: {e}"));
    }
    Ok(sessions.take())
}

async fn open_one(
    sender: &mut SendRequest<Full<Bytes>>,
    t: &Target,
    n: usize,
) -> Result<DeviceSession, String> {
    let sealed = seal(t, "authorize", &authorize_request(t, n))?;
    let (status, bytes) = send(sender, &t.addr, PATH_AUTHORIZE, sealed.body).await?;
    let envelope: SealedResponse =
        serde_json::from_slice(&bytes).map_err(|_| plain_error(status, &bytes))?;
    let plain = sealed
        .reply_key
        .open(&envelope)
        .map_err(|e| e.to_string())?;
    match serde_json::from_slice::<Reply<AuthorizeResponse>>(&plain) {
        Ok(Reply::Ok(r)) => {
            let session = r.session.ok_or("the server opened no report session")?;
            Ok(DeviceSession {
                ticket: session.ticket,
                key: sealed.reply_key.session_key(),
                seq: Cell::new(0),
            })
        }
        Ok(Reply::Err(e)) => Err(format!("{} {}", e.code, e.name)),
        Err(e) => Err(e.to_string()),
    }
}
