//! A minimal Tally server on a std `TcpListener`: one request per connection, answering hello,
//! authorize and session reports of protocol 2 as the real server does (see
//! `tally-server/src/api/client.rs` and `service/{authorize,report}.rs`), with knobs to
//! misbehave.
//!
//! Like the real server it answers in plain JSON only what it cannot seal (an envelope it cannot
//! open, a replayed envelope or message number, an unknown or expired ticket) and seals every
//! other answer, success or refusal, with the key of the request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tally_core::admission::{device_active_until, end_of_day, seat_until};
use tally_core::validity::{local_validity, offline_days};
use tally_core::{Clock, ManualClock};
use tally_crypto::session::{Direction, SessionKey, TicketContents, TicketKey};
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, Grant, GrantedItem, MAX_FEATURES_PER_REPORT,
    MAX_REPORTS_PER_REQUEST, MAX_REQUEST_SKEW_SECONDS, PATH_AUTHORIZE, PATH_HELLO,
    PATH_SESSION_REPORT, PROTOCOL_VERSION, RefusedReport, Reply, ReportRequest, ReportResponse,
    SESSION_SECONDS, SealedResponse, ServerHello, SessionEnvelope, SessionGrant,
};
use tally_proto::{ErrorBody, ErrorCode, UnixSeconds};

use crate::fixtures::{ServerKeys, first_item, server_certificate};

/// A report request the server opened in a session, with what the session's ticket says.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub device_uuid: String,
    pub handshake_code: String,
    pub ticket_id: [u8; 16],
    pub seq: u64,
    pub request: ReportRequest,
}

/// What the fake server does and what it saw.
#[derive(Default)]
pub struct Behaviour {
    /// Activated license files sent with grants.
    pub certificates: Vec<String>,
    /// The server certificate the hello shows: by default its own inside the first activated
    /// license file; `None` like a server without a license.
    pub hello_certificate: Option<String>,
    /// The license id and item granted: by default the first item of the first license file.
    pub license_id: String,
    pub item: Option<LicenseItem>,
    /// Before checking the next stamp, jump the server clock this far (then reset to 0).
    pub jump_clock_once: i64,
    /// Refuse the next authorizations with this error (sealed).
    pub refuse_authorize: Option<ErrorCode>,
    /// Answer POSTs with this plain error and HTTP status instead of opening them (what anyone
    /// on the path could answer).
    pub plain_error: Option<(u16, ErrorCode)>,
    /// Count the next session report but drop the connection instead of answering.
    pub lose_report_answer_once: bool,
    /// With `lose_report_answer_once`: go down (see `down`) right after losing the answer.
    pub down_after_lost_answer: bool,
    /// Read every request and drop the connection without answering: the server is down.
    pub down: bool,
    /// Answer 404 everywhere, like a server of protocol 1 (or no Tally server at all).
    pub old_protocol: bool,
    /// Item ids named as used up in every report reply.
    pub exhausted: Vec<String>,

    /// Hellos answered.
    pub hellos: usize,
    pub authorize_requests: Vec<AuthorizeRequest>,
    /// Session report requests judged (opened, not replayed, not stale).
    pub report_requests: Vec<SessionReport>,
    /// Counts per report id, each id counted once.
    pub counted: BTreeMap<String, BTreeMap<String, u64>>,
    /// Message numbers refused as already seen (plain `replayed_request`).
    pub replays_refused: usize,
    /// Session messages refused for an unknown or expired ticket (plain `session_expired`).
    pub expired_refused: usize,
    /// Requests refused as stale (sealed `stale_request`).
    pub stale_refused: usize,
    /// Session reports refused because the device held no live place (sealed `no_live_place`).
    pub no_live_place_refused: usize,

    /// Device → end of its place, as the admission holds it.
    places: HashMap<String, UnixSeconds>,
    /// Tickets issued so far and tickets the server no longer accepts.
    issued_tickets: Vec<[u8; 16]>,
    expired_tickets: HashSet<[u8; 16]>,
    /// Per ticket: the highest message number and the numbers seen.
    windows: HashMap<[u8; 16], (u64, HashSet<u64>)>,
    /// Encapsulated keys of the envelopes opened.
    envelopes: HashSet<[u8; 32]>,
}

struct Shared {
    keys: ServerKeys,
    tickets: TicketKey,
    clock: ManualClock,
    behaviour: Mutex<Behaviour>,
}

pub struct FakeServer {
    pub url: String,
    pub clock: ManualClock,
    shared: Arc<Shared>,
}

impl FakeServer {
    /// Starts serving with `keys` on an ephemeral port. `certificates` are the activated license
    /// files it holds: the hello shows the server certificate of the first (its own when the
    /// first names several servers), and grants name the first item of the first.
    pub fn start(keys: ServerKeys, certificates: Vec<String>, clock: ManualClock) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (license_id, item) = certificates
            .first()
            .map(|c| first_item(c))
            .map_or((String::new(), None), |(l, i)| (l, Some(i)));
        let behaviour = Behaviour {
            hello_certificate: certificates
                .first()
                .map(|c| server_certificate(c, &keys.identity)),
            certificates,
            license_id,
            item,
            ..Behaviour::default()
        };
        let shared = Arc::new(Shared {
            tickets: TicketKey::for_server(&keys.signing),
            keys,
            clock: clock.clone(),
            behaviour: Mutex::new(behaviour),
        });
        let server = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = server.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { url, clock, shared }
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        self.shared.behaviour.lock().unwrap()
    }

    /// Sum of the counts of `feature` over every report counted.
    pub fn total(&self, feature: &str) -> u64 {
        self.behaviour()
            .counted
            .values()
            .filter_map(|c| c.get(feature))
            .sum()
    }

    /// Every ticket issued so far is refused from now on, as when it has expired.
    pub fn expire_sessions(&self) {
        let mut b = self.behaviour();
        let issued = b.issued_tickets.clone();
        b.expired_tickets.extend(issued);
    }

    /// Every device loses its place (registration or seat), as when an administrator removes
    /// it: reports are refused with `no_live_place` until it authorizes again.
    pub fn drop_places(&self) {
        self.behaviour().places.clear();
    }
}

/// An HTTP answer, or `None` to drop the connection without one.
type Answer = Option<(u16, Vec<u8>)>;

fn serve(stream: TcpStream, shared: &Shared) {
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
    let answer = {
        let b = shared.behaviour.lock().unwrap();
        if b.down {
            None
        } else if b.old_protocol {
            Some((404, b"{\"nothing\":\"here\"}".to_vec()))
        } else {
            drop(b);
            route(method, path, &body, shared)
        }
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

fn route(method: &str, path: &str, body: &[u8], shared: &Shared) -> Answer {
    match (method, path) {
        ("GET", PATH_HELLO) => {
            let mut b = shared.behaviour.lock().unwrap();
            b.hellos += 1;
            let id = &shared.keys.identity;
            let hello = ServerHello {
                protocol: PROTOCOL_VERSION,
                uuid: id.uuid.clone(),
                signing_key: id.signing_key.clone(),
                encryption_key: id.encryption_key.clone(),
                server_time: shared.clock.now(),
                certificate: b.hello_certificate.clone(),
            };
            Some((200, serde_json::to_vec(&hello).unwrap()))
        }
        ("POST", PATH_AUTHORIZE) => authorize_endpoint(body, shared),
        ("POST", PATH_SESSION_REPORT) => session_endpoint(body, shared),
        _ => Some((404, b"{\"nothing\":\"here\"}".to_vec())),
    }
}

/// A plain JSON error with the code's own status and message.
fn plain(code: ErrorCode) -> Answer {
    plain_with(code.http_status(), ErrorBody::new(code, code.message()))
}

fn plain_with(status: u16, body: ErrorBody) -> Answer {
    Some((status, serde_json::to_vec(&body).unwrap()))
}

/// The reply to an opened request, sealed by `seal`; the status mirrors the error inside.
fn sealed_answer<Resp: Serialize>(
    outcome: Result<Resp, ErrorBody>,
    seal: impl FnOnce(&[u8]) -> SealedResponse,
) -> Answer {
    let (status, reply) = match outcome {
        Ok(r) => (200, Reply::Ok(r)),
        Err(e) => (
            ErrorCode::from_code(e.code).map_or(500, |c| c.http_status()),
            Reply::Err(e),
        ),
    };
    let sealed = seal(&serde_json::to_vec(&reply).unwrap());
    Some((status, serde_json::to_vec(&sealed).unwrap()))
}

/// Applies `jump_clock_once`, then refuses a `sent_at` too far from the server clock.
fn check_skew(
    sent_at: UnixSeconds,
    b: &mut Behaviour,
    clock: &ManualClock,
) -> Result<(), ErrorBody> {
    if b.jump_clock_once != 0 {
        clock.advance(b.jump_clock_once);
        b.jump_clock_once = 0;
    }
    let now = clock.now();
    if (sent_at - now).abs() > MAX_REQUEST_SKEW_SECONDS {
        b.stale_refused += 1;
        let mut e = ErrorBody::new(ErrorCode::StaleRequest, "stale");
        e.server_time = Some(now);
        return Err(e);
    }
    Ok(())
}

/// `POST /api/v2/authorize`: an HPKE envelope; every answer after opening it is sealed.
fn authorize_endpoint(body: &[u8], shared: &Shared) -> Answer {
    let mut b = shared.behaviour.lock().unwrap();
    if let Some((status, code)) = b.plain_error {
        return plain_with(status, ErrorBody::new(code, "refused before opening"));
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return plain(ErrorCode::BadRequest);
    };
    let Ok(opened) =
        tally_crypto::envelope::open_request(&shared.keys.encryption, "authorize", &envelope)
    else {
        return plain(ErrorCode::BadEnvelope);
    };
    let outcome = match serde_json::from_slice::<AuthorizeRequest>(&opened.plaintext) {
        Err(e) => Err(ErrorBody::new(ErrorCode::BadRequest, e.to_string())),
        Ok(req) => match check_skew(req.stamp.sent_at, &mut b, &shared.clock) {
            Err(e) => Err(e),
            Ok(()) if !b.envelopes.insert(opened.replay_id) => {
                return plain(ErrorCode::ReplayedRequest);
            }
            Ok(()) => authorize(req, opened.reply_key.session_key(), shared, &mut b),
        },
    };
    sealed_answer(outcome, |plain| opened.reply_key.seal(plain).unwrap())
}

/// Until when the admission holds the place of a device taken at `now` (see
/// `tally_core::admission`).
fn held_until(item: &LicenseItem, now: UnixSeconds) -> UnixSeconds {
    match item.license_type {
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => seat_until(item, now),
        LicenseType::PerActiveDevice => end_of_day(now).min(item.grace_end()),
        _ => device_active_until(item, now),
    }
}

fn authorize(
    req: AuthorizeRequest,
    session: SessionKey,
    shared: &Shared,
    b: &mut Behaviour,
) -> Result<AuthorizeResponse, ErrorBody> {
    b.authorize_requests.push(req.clone());
    if let Some(code) = b.refuse_authorize {
        return Err(ErrorBody::new(code, "refused by the fake server"));
    }
    let Some(item) = b.item.clone() else {
        return Err(ErrorBody::new(ErrorCode::ServerNotReady, "no license"));
    };
    if req.product != item.product || !req.modules.iter().all(|m| item.modules.contains(m)) {
        return Err(ErrorBody::new(ErrorCode::NoMatchingLicense, "no such item"));
    }
    let now = shared.clock.now();
    let held = held_until(&item, now);
    let days = offline_days(&item, None, req.buffer_days);
    let local = local_validity(&item, held, now, days, None);
    let concurrent = matches!(
        item.license_type,
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance
    );
    let grant = Grant {
        grant_id: tally_crypto::random_id().unwrap(),
        server_uuid: shared.keys.identity.uuid.clone(),
        device_uuid: req.device_uuid.clone(),
        organization: req.organization.clone(),
        handshake_code: "acme-default".into(),
        items: vec![GrantedItem {
            license_id: b.license_id.clone(),
            item_id: item.id.clone(),
            product: item.product.clone(),
            modules: item.modules.clone(),
            license_type: item.license_type,
            end: item.end,
            grace_end: item.grace_end(),
        }],
        issued_at: now,
        valid_until: local.valid_until,
        renew_at: local.renew_at,
        seat_until: concurrent.then_some(held),
    };
    b.places.insert(req.device_uuid.clone(), held);
    let expires_at = now + SESSION_SECONDS;
    let ticket = shared
        .tickets
        .issue(
            &session,
            &TicketContents {
                device_uuid: req.device_uuid,
                handshake_code: grant.handshake_code.clone(),
                expires_at,
            },
        )
        .unwrap();
    b.issued_tickets
        .push(TicketKey::ticket_id(&ticket).unwrap());
    Ok(AuthorizeResponse {
        grant: tally_crypto::grant::sign_grant(&grant, &shared.keys.signing).unwrap(),
        certificates: b.certificates.clone(),
        server_time: now,
        session: Some(SessionGrant { ticket, expires_at }),
    })
}

/// `POST /api/v2/session/report`: a message of a report session. Refusals before the message
/// opened are plain; everything after is sealed with the session key, this message's number and
/// the other direction.
fn session_endpoint(body: &[u8], shared: &Shared) -> Answer {
    let mut b = shared.behaviour.lock().unwrap();
    if let Some((status, code)) = b.plain_error {
        return plain_with(status, ErrorBody::new(code, "refused before opening"));
    }
    let Ok(envelope) = serde_json::from_slice::<SessionEnvelope>(body) else {
        return plain(ErrorCode::BadRequest);
    };
    if envelope.v != PROTOCOL_VERSION {
        return plain(ErrorCode::BadEnvelope);
    }
    let now = shared.clock.now();
    let ticket = match shared.tickets.open(&envelope.ticket) {
        Ok(t) if t.contents.expires_at > now && !b.expired_tickets.contains(&t.id) => t,
        _ => {
            b.expired_refused += 1;
            let mut e = ErrorBody::new(ErrorCode::SessionExpired, "unknown or expired ticket");
            e.server_time = Some(now);
            return plain_with(401, e);
        }
    };
    let Ok(plaintext) = ticket.key.open(
        Direction::ToServer,
        envelope.seq,
        &envelope.ticket,
        &envelope.ct,
    ) else {
        return plain(ErrorCode::BadEnvelope);
    };
    // The real server's window: numbers start at 1, each is accepted once, and a number 64 or
    // more below the highest is refused.
    let (highest, seen) = b.windows.entry(ticket.id).or_default();
    let fresh = envelope.seq != 0 && envelope.seq + 64 > *highest && seen.insert(envelope.seq);
    *highest = (*highest).max(envelope.seq);
    if !fresh {
        b.replays_refused += 1;
        return plain(ErrorCode::ReplayedRequest);
    }
    let outcome = match serde_json::from_slice::<ReportRequest>(&plaintext) {
        Err(e) => Err(ErrorBody::new(ErrorCode::BadRequest, e.to_string())),
        Ok(req) => match check_skew(req.sent_at, &mut b, &shared.clock) {
            Err(e) => Err(e),
            Ok(()) => {
                b.report_requests.push(SessionReport {
                    device_uuid: ticket.contents.device_uuid.clone(),
                    handshake_code: ticket.contents.handshake_code.clone(),
                    ticket_id: ticket.id,
                    seq: envelope.seq,
                    request: req.clone(),
                });
                report(&ticket.contents, req, shared.clock.now(), &mut b)
            }
        },
    };
    if std::mem::take(&mut b.lose_report_answer_once) {
        b.down = std::mem::take(&mut b.down_after_lost_answer);
        return None;
    }
    let key = ticket.key;
    sealed_answer(outcome, |plain| SealedResponse {
        ct: key
            .seal(Direction::ToClient, envelope.seq, &envelope.ticket, plain)
            .unwrap(),
    })
}

/// The reports of a session, judged one by one as the real server does.
fn report(
    session: &TicketContents,
    req: ReportRequest,
    now: UnixSeconds,
    b: &mut Behaviour,
) -> Result<ReportResponse, ErrorBody> {
    // A place held now (`tally_core::reporting::holds_live_place`).
    let live = b.places.get(&session.device_uuid).copied();
    if !tally_core::reporting::holds_live_place(live.into_iter(), now) {
        b.no_live_place_refused += 1;
        let mut e = ErrorBody::new(ErrorCode::NoLivePlace, ErrorCode::NoLivePlace.message());
        e.server_time = Some(now);
        return Err(e);
    }
    if req.reports.len() > MAX_REPORTS_PER_REQUEST {
        return Err(ErrorBody::new(ErrorCode::BadRequest, "too many reports"));
    }
    let mut accepted = Vec::new();
    let mut duplicates = Vec::new();
    let mut refused = Vec::new();
    for r in &req.reports {
        let problem = if r.report_id.is_empty() || r.slice < 0 {
            Some("malformed report".to_owned())
        } else if r.counts.len() > MAX_FEATURES_PER_REPORT {
            Some("too many features".to_owned())
        } else {
            r.counts
                .iter()
                .find(|(_, n)| **n > i64::MAX as u64 / 2)
                .map(|(f, _)| format!("feature `{f}`: count too large"))
        };
        if let Some(message) = problem {
            refused.push(RefusedReport {
                report_id: r.report_id.clone(),
                code: ErrorCode::BadRequest.code(),
                message,
            });
        } else if b.counted.contains_key(&r.report_id) {
            duplicates.push(r.report_id.clone());
        } else {
            b.counted.insert(r.report_id.clone(), r.counts.clone());
            accepted.push(r.report_id.clone());
        }
    }
    Ok(ReportResponse {
        accepted,
        duplicates,
        refused,
        exhausted: b.exhausted.clone(),
        server_time: now,
    })
}
