//! The client protocol spoken by hand: envelopes, replay protection and malformed requests.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_core::Clock;
use tally_crypto::envelope::{ReplyKey, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::{Direction, SessionKey};
use tally_proto::ErrorBody;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, PATH_AUTHORIZE, PATH_HELLO, PATH_SESSION_REPORT,
    PROTOCOL_VERSION, Reply, ReportRequest, ReportResponse, RequestStamp, SealedResponse,
    ServerHello, SessionEnvelope, SessionGrant, UsageReport, ValidationField,
};

use crate::common::*;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn post_raw(s: &TestServer, path: &str, body: &[u8]) -> (u16, String) {
    let mut resp = agent()
        .post(&format!("{}{path}", s.url))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn hello_text(s: &TestServer) -> String {
    let mut resp = agent()
        .get(&format!("{}{PATH_HELLO}", s.url))
        .call()
        .unwrap();
    resp.body_mut().read_to_string().unwrap()
}

fn hello(s: &TestServer) -> ServerHello {
    serde_json::from_str(&hello_text(s)).unwrap()
}

fn seal<T: Serialize>(s: &TestServer, purpose: &str, req: &T) -> (Envelope, ReplyKey) {
    let key = EncryptionPublicKey::from_base64(&hello(s).encryption_key).unwrap();
    seal_request(&key, purpose, &serde_json::to_vec(req).unwrap()).unwrap()
}

fn open<T: DeserializeOwned>(key: &ReplyKey, body: &str) -> Reply<T> {
    let sealed: SealedResponse = serde_json::from_str(body).unwrap();
    serde_json::from_slice(&key.open(&sealed).unwrap()).unwrap()
}

fn request(sent_at: i64, device: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        stamp: RequestStamp {
            request_id: tally_crypto::random_id().unwrap(),
            sent_at,
        },
        organization: "acme".into(),
        handshake_code: String::new(),
        session_password: None,
        device_uuid: device.into(),
        product: "scanner".into(),
        version: None,
        modules: vec![],
        validation: ValidationField::default(),
        friendly_name: None,
        buffer_days: None,
        instances: None,
    }
}

fn licensed_server() -> TestServer {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    s
}

#[test]
fn hello_proves_the_server_keys_and_discloses_no_license() {
    let s = licensed_server();
    let text = hello_text(&s);
    let h: ServerHello = serde_json::from_str(&text).unwrap();
    assert_eq!(h.protocol, PROTOCOL_VERSION);
    assert_eq!(h.uuid, s.state.identity.uuid);
    assert_eq!(h.server_time, T0);
    let certificate = tally_crypto::document::verify_certificate(
        h.certificate.as_deref().expect("a certificate"),
        &s.vendor.verifying_key(),
    )
    .unwrap();
    assert_eq!(certificate.license_id, "L-1");
    assert_eq!(certificate.server.encryption_key, h.encryption_key);
    assert_eq!(certificate.server.signing_key, h.signing_key);
    // Nothing of the license itself: organization, alias, items, products, quantities.
    for secret in [
        "acme",
        "alias",
        "L-1-1",
        "scanner",
        "quantity",
        "per-device",
    ] {
        assert!(!text.contains(secret), "hello discloses `{secret}`: {text}");
    }
    // A server with no license shows no certificate, so no client trusts it.
    let empty = TestServer::start();
    assert_eq!(hello(&empty).certificate, None);
}

#[test]
fn clients_of_the_previous_protocol_are_told_to_update() {
    let s = licensed_server();
    let mut resp = agent()
        .get(&format!("{}/api/v1/hello", s.url))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 410);
    let err: ErrorBody = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((err.code, err.name.as_str()), (206, "protocol_outdated"));
    assert!(err.message.contains("update"), "{}", err.message);
    for path in [
        "/api/v1/authorize",
        "/api/v1/report",
        "/api/v1/session/report",
    ] {
        let (status, text) = post_raw(&s, path, b"{\"v\":1,\"enc\":\"\",\"ct\":\"\"}");
        let err: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, err.name.as_str()),
            (410, "protocol_outdated"),
            "{path}"
        );
    }
}

#[test]
fn a_replayed_envelope_is_refused() {
    let s = licensed_server();
    let (env, key) = seal(&s, "authorize", &request(T0, "device-1"));
    let body = serde_json::to_vec(&env).unwrap();
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &body);
    assert_eq!(status, 200);
    assert!(matches!(
        open::<AuthorizeResponse>(&key, &text),
        Reply::Ok(_)
    ));
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &body);
    assert_eq!(status, 409);
    match open::<AuthorizeResponse>(&key, &text) {
        Reply::Err(e) => assert_eq!(e.name, "replayed_request"),
        Reply::Ok(_) => panic!("replay accepted"),
    }
}

#[test]
fn a_stale_request_is_refused_with_the_server_time() {
    let s = licensed_server();
    let (env, key) = seal(&s, "authorize", &request(T0 - 3600, "device-1"));
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 400);
    match open::<AuthorizeResponse>(&key, &text) {
        Reply::Err(e) => {
            assert_eq!(e.name, "stale_request");
            assert_eq!(e.server_time, Some(T0));
        }
        Reply::Ok(_) => panic!("stale request accepted"),
    }
}

#[test]
fn an_envelope_for_another_endpoint_cannot_be_opened() {
    let s = licensed_server();
    let (env, _) = seal(&s, "report", &request(T0, "device-1"));
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 400);
    let err: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(err.name, "bad_envelope");
}

#[test]
fn malformed_bodies_get_clear_errors() {
    let s = licensed_server();
    for body in [
        &b"not json"[..],
        b"{}",
        br#"{"v":1,"enc":"@@","ct":""}"#,
        br#"{"v":9,"enc":"","ct":""}"#,
    ] {
        let (status, text) = post_raw(&s, PATH_AUTHORIZE, body);
        assert_eq!(status, 400, "body {:?}", String::from_utf8_lossy(body));
        let err: ErrorBody = serde_json::from_str(&text).unwrap();
        assert!(
            ["bad_request", "bad_envelope"].contains(&err.name.as_str()),
            "{err:?}"
        );
    }
    let huge = vec![b'x'; 300 * 1024];
    let (status, text) = post_raw(&s, PATH_SESSION_REPORT, &huge);
    assert_eq!(status, 413);
    let err: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(err.name, "payload_too_large");
}

#[test]
fn a_sealed_request_with_bad_fields_is_refused_inside_the_envelope() {
    let s = licensed_server();
    let mut req = request(T0, "device with spaces");
    req.friendly_name = Some("x".repeat(300));
    let (env, key) = seal(&s, "authorize", &req);
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 400);
    match open::<AuthorizeResponse>(&key, &text) {
        Reply::Err(e) => assert_eq!(e.name, "bad_request"),
        Reply::Ok(_) => panic!("accepted"),
    }
    let (env, key) = seal(
        &s,
        "authorize",
        &serde_json::json!({"stamp": {"request_id": "x", "sent_at": T0}}),
    );
    let (status, text) = post_raw(&s, PATH_AUTHORIZE, &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 400);
    assert!(matches!(
        open::<AuthorizeResponse>(&key, &text),
        Reply::Err(_)
    ));
}

/// Authorizes `device` by hand and returns the grant's report session with its key.
pub fn open_session(s: &TestServer, device: &str) -> (SessionGrant, SessionKey) {
    let (env, key) = seal(s, "authorize", &request(s.clock.now(), device));
    let (status, text) = post_raw(s, PATH_AUTHORIZE, &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 200, "{text}");
    match open::<AuthorizeResponse>(&key, &text) {
        Reply::Ok(r) => (r.session.expect("a report session"), key.session_key()),
        Reply::Err(e) => panic!("authorization refused: {e:?}"),
    }
}

pub fn session_report_request(s: &TestServer, report_id: &str) -> ReportRequest {
    ReportRequest {
        sent_at: s.clock.now(),
        reports: vec![UsageReport {
            report_id: report_id.into(),
            slice: tally_proto::slice::slice_of(s.clock.now()),
            counts: [("scan".to_string(), 2u64)].into(),
        }],
    }
}

pub fn session_body(ticket: &str, seq: u64, key: &SessionKey, req: &ReportRequest) -> Vec<u8> {
    let ct = key
        .seal(
            Direction::ToServer,
            seq,
            ticket,
            &serde_json::to_vec(req).unwrap(),
        )
        .unwrap();
    serde_json::to_vec(&SessionEnvelope {
        v: PROTOCOL_VERSION,
        ticket: ticket.into(),
        seq,
        ct,
    })
    .unwrap()
}

pub fn open_session_reply(
    key: &SessionKey,
    seq: u64,
    ticket: &str,
    body: &str,
) -> Reply<ReportResponse> {
    let sealed: SealedResponse = serde_json::from_str(body).unwrap();
    let plain = key
        .open(Direction::ToClient, seq, ticket, &sealed.ct)
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

pub fn plain_error(status_and_body: (u16, String)) -> (u16, String) {
    let err: ErrorBody = serde_json::from_str(&status_and_body.1).unwrap();
    (status_and_body.0, err.name)
}

#[test]
fn reports_in_a_session_are_counted_once_and_replays_refused() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    assert_eq!(session.expires_at, T0 + 24 * 3600);
    let t = session.ticket.as_str();
    let req = session_report_request(&s, "r-1");
    let body = session_body(t, 1, &key, &req);
    let (status, text) = post_raw(&s, PATH_SESSION_REPORT, &body);
    assert_eq!(status, 200, "{text}");
    match open_session_reply(&key, 1, t, &text) {
        Reply::Ok(r) => assert_eq!(r.accepted, ["r-1"]),
        Reply::Err(e) => panic!("refused: {e:?}"),
    }
    // The same message again: refused in plain JSON, nothing counted twice.
    assert_eq!(
        plain_error(post_raw(&s, PATH_SESSION_REPORT, &body)),
        (409, "replayed_request".to_string())
    );
    // A new message number may carry the same report (a retry): it is a duplicate.
    let (status, text) = post_raw(&s, PATH_SESSION_REPORT, &session_body(t, 2, &key, &req));
    assert_eq!(status, 200);
    match open_session_reply(&key, 2, t, &text) {
        Reply::Ok(r) => assert_eq!(r.duplicates, ["r-1"]),
        Reply::Err(e) => panic!("refused: {e:?}"),
    }
    let stats: Vec<tally_proto::admin::UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(stats.iter().map(|d| d.count).sum::<u64>(), 2);
}

#[test]
fn a_session_is_bound_to_its_server_device_time_and_bytes() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    let t = session.ticket.as_str();
    let first = session_report_request(&s, "r-1");
    let (status, _) = post_raw(&s, PATH_SESSION_REPORT, &session_body(t, 1, &key, &first));
    assert_eq!(status, 200);
    // A ticket that copies the id of a known session but not its key cannot speak for it.
    let forged_key = SessionKey::from_bytes([7; 32]);
    let forged_ticket = format!("{}{}", &t[..32], "A".repeat(t.len() - 32));
    let own = session_report_request(&s, "r-forged");
    assert_eq!(
        plain_error(post_raw(
            &s,
            PATH_SESSION_REPORT,
            &session_body(&forged_ticket, 9, &forged_key, &own)
        )),
        (400, "bad_envelope".to_string())
    );
    // A flipped bit in the ciphertext, or the wrong key, does not open.
    let req = session_report_request(&s, "r-2");
    let mut envelope: SessionEnvelope =
        serde_json::from_slice(&session_body(t, 2, &key, &req)).unwrap();
    let mut ct = tally_crypto::b64_decode(&envelope.ct).unwrap();
    ct[3] ^= 1;
    envelope.ct = tally_crypto::b64_encode(&ct);
    assert_eq!(
        plain_error(post_raw(
            &s,
            PATH_SESSION_REPORT,
            &serde_json::to_vec(&envelope).unwrap()
        )),
        (400, "bad_envelope".to_string())
    );
    // A ticket of another server is unknown here.
    let other_server = licensed_server();
    let (foreign, foreign_key) = open_session(&other_server, "device-1");
    assert_eq!(
        plain_error(post_raw(
            &s,
            PATH_SESSION_REPORT,
            &session_body(&foreign.ticket, 1, &foreign_key, &req)
        )),
        (401, "session_expired".to_string())
    );
    // After 24 hours the session is over; nothing was counted on the way.
    s.clock.advance(24 * 3600);
    let late = session_report_request(&s, "r-3");
    assert_eq!(
        plain_error(post_raw(
            &s,
            PATH_SESSION_REPORT,
            &session_body(t, 3, &key, &late)
        )),
        (401, "session_expired".to_string())
    );
    let stats: Vec<tally_proto::admin::UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(
        stats.iter().map(|d| d.count).sum::<u64>(),
        2,
        "only the first, genuine report: {stats:?}"
    );
}

#[test]
fn a_session_survives_a_server_restart() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    let vendor = s.vendor.clone();
    let (data, _) = s.stop();
    let s = TestServer::start_in(data, vendor, "machine-1");
    let req = session_report_request(&s, "r-1");
    let (status, text) = post_raw(
        &s,
        PATH_SESSION_REPORT,
        &session_body(&session.ticket, 1, &key, &req),
    );
    assert_eq!(status, 200, "{text}");
}

#[test]
fn a_batch_is_judged_report_by_report() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    let t = session.ticket.as_str();
    let now_slice = tally_proto::slice::slice_of(T0);
    let report = |id: &str, slice: i64, feature: &str| UsageReport {
        report_id: id.into(),
        slice,
        counts: [(feature.to_string(), 3u64)].into(),
    };
    let req = ReportRequest {
        sent_at: T0,
        reports: vec![
            report("honest", now_slice, "scan"),
            // Recorded while the device clock ran two days ahead.
            report("ahead", now_slice + 2 * 480, "scan"),
            report("malformed", now_slice, "has space"),
            report("", now_slice, "scan"),
            report("later", now_slice, "scan"),
        ],
    };
    let (status, text) = post_raw(&s, PATH_SESSION_REPORT, &session_body(t, 1, &key, &req));
    assert_eq!(status, 200, "{text}");
    let Reply::Ok(r) = open_session_reply(&key, 1, t, &text) else {
        panic!("the batch was refused whole: {text}");
    };
    assert_eq!(r.accepted, ["honest", "ahead", "later"]);
    let refused: Vec<(&str, u16)> = r
        .refused
        .iter()
        .map(|x| (x.report_id.as_str(), x.code))
        .collect();
    assert_eq!(refused, [("malformed", 200), ("", 200)]);
    // The report from the future counts in the present slice, today.
    let rows: Vec<tally_proto::admin::UsageRow> =
        s.admin_ok("GET", "/stats/usage?from=2026-06-01&to=2026-06-03", None);
    let days: Vec<(&str, u64)> = rows.iter().map(|r| (r.day.as_str(), r.count)).collect();
    assert_eq!(days, [("2026-06-01", 9)]);
}

#[test]
fn a_device_that_lost_its_place_cannot_report() {
    let s = TestServer::start();
    s.import(&s.activated(
        "L-1",
        "acme",
        vec![typed(
            "L-1-1",
            tally_proto::license::LicenseType::ConcurrentDevice,
            1,
            0,
        )],
    ));
    let (session, key) = open_session(&s, "device-1");
    let t = session.ticket.as_str();
    // The seat lasts to the end of the next slice; ten minutes later it has lapsed.
    s.clock.advance(600);
    let req = ReportRequest {
        sent_at: s.clock.now(),
        reports: vec![UsageReport {
            report_id: "r-1".into(),
            slice: tally_proto::slice::slice_of(s.clock.now()),
            counts: [("scan".to_string(), 1_000_000u64)].into(),
        }],
    };
    let (status, text) = post_raw(&s, PATH_SESSION_REPORT, &session_body(t, 1, &key, &req));
    assert_eq!(status, 403, "{text}");
    match open_session_reply(&key, 1, t, &text) {
        Reply::Err(e) => assert_eq!(e.name, "no_live_place"),
        Reply::Ok(r) => panic!("counted without a place: {r:?}"),
    }
    let stats: Vec<tally_proto::admin::UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert!(stats.is_empty(), "{stats:?}");
}
