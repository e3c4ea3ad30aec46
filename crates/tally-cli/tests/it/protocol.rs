//! The client protocol spoken by hand: envelopes, replay protection and malformed requests.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_core::Clock;
use tally_crypto::envelope::{ReplyKey, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::{Direction, SessionKey};
use tally_proto::ErrorBody;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, Reply, ReportRequest, ReportResponse,
    RequestStamp, SealedResponse, ServerHello, SessionEnvelope, SessionGrant, UsageReport,
    ValidationField,
};

use crate::common::*;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post_raw(s: &TestServer, path: &str, body: &[u8]) -> (u16, String) {
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

fn hello(s: &TestServer) -> ServerHello {
    let mut resp = agent()
        .get(&format!("{}/api/v1/hello", s.url))
        .call()
        .unwrap();
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
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
fn hello_presents_the_activated_licenses() {
    let s = licensed_server();
    let h = hello(&s);
    assert_eq!(h.uuid, s.state.identity.uuid);
    assert_eq!(h.server_time, T0);
    assert_eq!(h.certificates.len(), 1);
    let activated =
        tally_crypto::document::verify_activated(&h.certificates[0], &s.vendor.verifying_key())
            .unwrap();
    assert_eq!(activated.server.encryption_key, h.encryption_key);
}

#[test]
fn a_replayed_envelope_is_refused() {
    let s = licensed_server();
    let (env, key) = seal(&s, "authorize", &request(T0, "device-1"));
    let body = serde_json::to_vec(&env).unwrap();
    let (status, text) = post_raw(&s, "/api/v1/authorize", &body);
    assert_eq!(status, 200);
    assert!(matches!(
        open::<AuthorizeResponse>(&key, &text),
        Reply::Ok(_)
    ));
    let (status, text) = post_raw(&s, "/api/v1/authorize", &body);
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
    let (status, text) = post_raw(&s, "/api/v1/authorize", &serde_json::to_vec(&env).unwrap());
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
    let (status, text) = post_raw(&s, "/api/v1/authorize", &serde_json::to_vec(&env).unwrap());
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
        let (status, text) = post_raw(&s, "/api/v1/authorize", body);
        assert_eq!(status, 400, "body {:?}", String::from_utf8_lossy(body));
        let err: ErrorBody = serde_json::from_str(&text).unwrap();
        assert!(
            ["bad_request", "bad_envelope"].contains(&err.name.as_str()),
            "{err:?}"
        );
    }
    let huge = vec![b'x'; 300 * 1024];
    let (status, text) = post_raw(&s, "/api/v1/report", &huge);
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
    let (status, text) = post_raw(&s, "/api/v1/authorize", &serde_json::to_vec(&env).unwrap());
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
    let (status, text) = post_raw(&s, "/api/v1/authorize", &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 400);
    assert!(matches!(
        open::<AuthorizeResponse>(&key, &text),
        Reply::Err(_)
    ));
}

/// Authorizes `device` by hand and returns the grant's report session with its key.
fn open_session(s: &TestServer, device: &str) -> (SessionGrant, SessionKey) {
    let (env, key) = seal(s, "authorize", &request(s.clock.now(), device));
    let (status, text) = post_raw(s, "/api/v1/authorize", &serde_json::to_vec(&env).unwrap());
    assert_eq!(status, 200, "{text}");
    match open::<AuthorizeResponse>(&key, &text) {
        Reply::Ok(r) => (r.session.expect("a report session"), key.session_key()),
        Reply::Err(e) => panic!("authorization refused: {e:?}"),
    }
}

fn session_report_request(s: &TestServer, device: &str, report_id: &str) -> ReportRequest {
    ReportRequest {
        stamp: RequestStamp {
            request_id: tally_crypto::random_id().unwrap(),
            sent_at: s.clock.now(),
        },
        device_uuid: device.into(),
        organization: "acme".into(),
        handshake_code: "acme-default".into(),
        reports: vec![UsageReport {
            report_id: report_id.into(),
            slice: tally_proto::slice::slice_of(s.clock.now()),
            counts: [("scan".to_string(), 2u64)].into(),
        }],
    }
}

fn session_body(ticket: &str, seq: u64, key: &SessionKey, req: &ReportRequest) -> Vec<u8> {
    let ct = key
        .seal(
            Direction::ToServer,
            seq,
            ticket,
            &serde_json::to_vec(req).unwrap(),
        )
        .unwrap();
    serde_json::to_vec(&SessionEnvelope {
        v: 1,
        ticket: ticket.into(),
        seq,
        ct,
    })
    .unwrap()
}

fn open_session_reply(
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

fn plain_error(status_and_body: (u16, String)) -> (u16, String) {
    let err: ErrorBody = serde_json::from_str(&status_and_body.1).unwrap();
    (status_and_body.0, err.name)
}

#[test]
fn reports_in_a_session_are_counted_once_and_replays_refused() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    assert_eq!(session.expires_at, T0 + 24 * 3600);
    let t = session.ticket.as_str();
    let req = session_report_request(&s, "device-1", "r-1");
    let body = session_body(t, 1, &key, &req);
    let (status, text) = post_raw(&s, "/api/v1/session/report", &body);
    assert_eq!(status, 200, "{text}");
    match open_session_reply(&key, 1, t, &text) {
        Reply::Ok(r) => assert_eq!(r.accepted, ["r-1"]),
        Reply::Err(e) => panic!("refused: {e:?}"),
    }
    // The same message again: refused in plain JSON, nothing counted twice.
    assert_eq!(
        plain_error(post_raw(&s, "/api/v1/session/report", &body)),
        (409, "replayed_request".to_string())
    );
    // A new message number may carry the same report (a retry): it is a duplicate.
    let (status, text) = post_raw(
        &s,
        "/api/v1/session/report",
        &session_body(t, 2, &key, &req),
    );
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
    // Another device cannot use this device's session (sealed refusal: the message was valid).
    let other = session_report_request(&s, "device-2", "r-x");
    let (status, text) = post_raw(
        &s,
        "/api/v1/session/report",
        &session_body(t, 1, &key, &other),
    );
    assert_eq!(status, 400);
    match open_session_reply(&key, 1, t, &text) {
        Reply::Err(e) => assert_eq!(e.name, "bad_request"),
        Reply::Ok(_) => panic!("another device's report accepted"),
    }
    // A ticket that copies the id of a known session but not its key cannot speak for it.
    let forged_key = SessionKey::from_bytes([7; 32]);
    let forged_ticket = format!("{}{}", &t[..32], "A".repeat(t.len() - 32));
    let own = session_report_request(&s, "device-1", "r-forged");
    assert_eq!(
        plain_error(post_raw(
            &s,
            "/api/v1/session/report",
            &session_body(&forged_ticket, 9, &forged_key, &own)
        )),
        (400, "bad_envelope".to_string())
    );
    // A flipped bit in the ciphertext, or the wrong key, does not open.
    let req = session_report_request(&s, "device-1", "r-2");
    let mut envelope: SessionEnvelope =
        serde_json::from_slice(&session_body(t, 2, &key, &req)).unwrap();
    let mut ct = tally_crypto::b64_decode(&envelope.ct).unwrap();
    ct[3] ^= 1;
    envelope.ct = tally_crypto::b64_encode(&ct);
    assert_eq!(
        plain_error(post_raw(
            &s,
            "/api/v1/session/report",
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
            "/api/v1/session/report",
            &session_body(&foreign.ticket, 1, &foreign_key, &req)
        )),
        (401, "session_expired".to_string())
    );
    // After 24 hours the session is over; nothing was counted on the way.
    s.clock.advance(24 * 3600);
    let late = session_report_request(&s, "device-1", "r-3");
    assert_eq!(
        plain_error(post_raw(
            &s,
            "/api/v1/session/report",
            &session_body(t, 3, &key, &late)
        )),
        (401, "session_expired".to_string())
    );
    let stats: Vec<tally_proto::admin::UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert!(stats.is_empty(), "{stats:?}");
}

#[test]
fn a_session_survives_a_server_restart() {
    let s = licensed_server();
    let (session, key) = open_session(&s, "device-1");
    let vendor = s.vendor.clone();
    let (data, _) = s.stop();
    let s = TestServer::start_in(data, vendor, "machine-1");
    let req = session_report_request(&s, "device-1", "r-1");
    let (status, text) = post_raw(
        &s,
        "/api/v1/session/report",
        &session_body(&session.ticket, 1, &key, &req),
    );
    assert_eq!(status, 200, "{text}");
}
