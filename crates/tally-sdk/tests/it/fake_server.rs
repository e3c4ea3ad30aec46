//! A minimal Tally server on a std `TcpListener`: one request per connection, answering hello,
//! authorize and report exactly as the wire contract says, with knobs to misbehave.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use tally_core::{Clock, ManualClock};
use tally_proto::wire::{
    AuthorizeRequest, Envelope, MAX_REQUEST_SKEW_SECONDS, Reply, ReportRequest, ReportResponse,
    ServerHello,
};
use tally_proto::{ErrorBody, ErrorCode};

use crate::fixtures::ServerKeys;

/// What the fake server does and what it saw.
#[derive(Default)]
pub struct Behaviour {
    /// Certificates shown in the hello and sent with grants.
    pub certificates: Vec<String>,
    /// Before checking the next stamp, jump the server clock this far (then reset to 0).
    pub jump_clock_once: i64,
    /// Refuse the next authorizations with this error (sealed).
    pub refuse_authorize: Option<ErrorCode>,
    /// Answer sealed requests with this plain error and HTTP status instead of opening them.
    pub plain_error: Option<(u16, ErrorCode)>,
    /// Record the next report request but drop the connection instead of answering.
    pub lose_report_answer_once: bool,

    pub authorize_requests: Vec<AuthorizeRequest>,
    pub report_requests: Vec<ReportRequest>,
    /// Counts per report id, each id counted once.
    pub counted: BTreeMap<String, BTreeMap<String, u64>>,
}

pub struct FakeServer {
    pub url: String,
    pub clock: ManualClock,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl FakeServer {
    /// Starts serving with `keys` on an ephemeral port, showing `certificates`.
    pub fn start(keys: ServerKeys, certificates: Vec<String>, clock: ManualClock) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(Behaviour {
            certificates,
            ..Behaviour::default()
        }));
        let shared = behaviour.clone();
        let server_clock = clock.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (keys, shared, clock) = (keys.clone(), shared.clone(), server_clock.clone());
                std::thread::spawn(move || serve(stream, &keys, &shared, &clock));
            }
        });
        Self {
            url,
            clock,
            behaviour,
        }
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.behaviour.lock().unwrap()
    }

    /// Sum of the counts of `feature` over every report counted.
    pub fn total(&self, feature: &str) -> u64 {
        self.behaviour()
            .counted
            .values()
            .filter_map(|c| c.get(feature))
            .sum()
    }
}

fn serve(stream: TcpStream, keys: &ServerKeys, shared: &Mutex<Behaviour>, clock: &ManualClock) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let answer = match (method, path) {
        ("GET", "/api/v1/hello") => {
            let b = shared.lock().unwrap();
            let hello = ServerHello {
                uuid: keys.identity.uuid.clone(),
                signing_key: keys.identity.signing_key.clone(),
                encryption_key: keys.identity.encryption_key.clone(),
                server_time: clock.now(),
                certificates: b.certificates.clone(),
            };
            Some((200, serde_json::to_vec(&hello).unwrap()))
        }
        ("POST", "/api/v1/authorize") => sealed(&body, "authorize", keys, shared, clock, authorize),
        ("POST", "/api/v1/report") => sealed(&body, "report", keys, shared, clock, report),
        _ => Some((404, b"{\"nothing\":\"here\"}".to_vec())),
    };
    let Some((status, bytes)) = answer else {
        return; // connection dropped without an answer
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&bytes);
}

type Handler<Req, Resp> =
    fn(Req, &ServerKeys, &mut Behaviour, &ManualClock) -> Result<Resp, ErrorBody>;

/// Opens the envelope, checks the stamp, runs the handler and seals its reply.
fn sealed<Req, Resp>(
    body: &[u8],
    purpose: &str,
    keys: &ServerKeys,
    shared: &Mutex<Behaviour>,
    clock: &ManualClock,
    handler: Handler<Req, Resp>,
) -> Option<(u16, Vec<u8>)>
where
    Req: serde::de::DeserializeOwned + Stamped,
    Resp: serde::Serialize,
{
    let mut b = shared.lock().unwrap();
    if let Some((status, code)) = b.plain_error {
        let plain = ErrorBody::new(code, "refused before opening");
        return Some((status, serde_json::to_vec(&plain).unwrap()));
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let opened = tally_crypto::envelope::open_request(&keys.encryption, purpose, &envelope).ok()?;
    let req: Req = serde_json::from_slice(&opened.plaintext).ok()?;
    if b.jump_clock_once != 0 {
        clock.advance(b.jump_clock_once);
        b.jump_clock_once = 0;
    }
    let now = clock.now();
    let outcome = if (req.sent_at() - now).abs() > MAX_REQUEST_SKEW_SECONDS {
        let mut e = ErrorBody::new(ErrorCode::StaleRequest, "stale");
        e.server_time = Some(now);
        Err(e)
    } else {
        handler(req, keys, &mut b, clock)
    };
    if purpose == "report" && std::mem::take(&mut b.lose_report_answer_once) {
        return None;
    }
    let (status, reply) = match outcome {
        Ok(r) => (200, Reply::Ok(r)),
        Err(e) => (
            ErrorCode::from_code(e.code).map_or(500, |c| c.http_status()),
            Reply::Err(e),
        ),
    };
    let sealed = opened
        .reply_key
        .seal(&serde_json::to_vec(&reply).unwrap())
        .unwrap();
    Some((status, serde_json::to_vec(&sealed).unwrap()))
}

trait Stamped {
    fn sent_at(&self) -> i64;
}
impl Stamped for AuthorizeRequest {
    fn sent_at(&self) -> i64 {
        self.stamp.sent_at
    }
}
impl Stamped for ReportRequest {
    fn sent_at(&self) -> i64 {
        self.stamp.sent_at
    }
}

fn authorize(
    req: AuthorizeRequest,
    keys: &ServerKeys,
    b: &mut Behaviour,
    clock: &ManualClock,
) -> Result<tally_proto::wire::AuthorizeResponse, ErrorBody> {
    b.authorize_requests.push(req.clone());
    if let Some(code) = b.refuse_authorize {
        return Err(ErrorBody::new(code, "refused by the fake server"));
    }
    let now = clock.now();
    let end = crate::fixtures::T0 + 365 * crate::fixtures::DAY;
    let grant = tally_proto::wire::Grant {
        grant_id: tally_crypto::random_id().unwrap(),
        server_uuid: keys.identity.uuid.clone(),
        device_uuid: req.device_uuid,
        organization: req.organization,
        handshake_code: "acme-default".into(),
        items: vec![tally_proto::wire::GrantedItem {
            license_id: "L-1".into(),
            item_id: "L-1-1".into(),
            product: req.product,
            modules: vec!["qr".into(), "ocr".into()],
            license_type: tally_proto::license::LicenseType::PerDevice,
            end,
        }],
        issued_at: now,
        valid_until: tally_core::validity::grant_valid_until(
            now,
            req.buffer_days.unwrap_or(7),
            end,
        ),
        seat_until: None,
    };
    Ok(tally_proto::wire::AuthorizeResponse {
        grant: tally_crypto::grant::sign_grant(&grant, &keys.signing).unwrap(),
        certificates: b.certificates.clone(),
        server_time: now,
        // Like a server without report sessions: reports take the sealed path.
        session: None,
    })
}

fn report(
    req: ReportRequest,
    _keys: &ServerKeys,
    b: &mut Behaviour,
    clock: &ManualClock,
) -> Result<ReportResponse, ErrorBody> {
    if req.reports.len() > tally_proto::wire::MAX_REPORTS_PER_REQUEST {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "too many reports"));
    }
    let mut accepted = Vec::new();
    let mut duplicates = Vec::new();
    for r in &req.reports {
        if r.counts.len() > tally_proto::wire::MAX_FEATURES_PER_REPORT {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "too many features"));
        }
        if b.counted.contains_key(&r.report_id) {
            duplicates.push(r.report_id.clone());
        } else {
            b.counted.insert(r.report_id.clone(), r.counts.clone());
            accepted.push(r.report_id.clone());
        }
    }
    b.report_requests.push(req);
    Ok(ReportResponse {
        accepted,
        duplicates,
        server_time: clock.now(),
    })
}
