//! The client protocol spoken by hand: envelopes, replay protection and malformed requests.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_crypto::envelope::{ReplyKey, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_proto::ErrorBody;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, Reply, RequestStamp, SealedResponse,
    ServerHello, ValidationField,
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
