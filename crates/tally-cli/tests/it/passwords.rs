//! Session passwords seen from devices, through the real SDK against the real server: a right
//! password is verified once and then remembered, wrong ones are throttled per address (and never
//! the remembered right one), and a changed password applies at once. Every request comes from
//! 127.0.0.1, so the per-code budget, larger than an address's, is covered by the server's unit
//! tests.

use serde_json::json;
use tally_proto::ErrorCode;
use tally_proto::admin::{DeviceView, HandshakeView};
use tally_sdk::Client;
use tally_server::passwords::PER_SOURCE;

use crate::common::*;
use crate::e2e::{client, config, refusal};

const RIGHT: &str = "correct horse";

/// A server whose default code `acme-default` asks for the session password [`RIGHT`].
fn server() -> TestServer {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 100, 10)]));
    let view = update_code(&s, "acme-default", json!({"session_password": RIGHT}));
    assert!(view.has_session_password);
    s
}

/// A device of `name` that authorizes on `code` (empty: the organization's default) with
/// `password`.
fn device(s: &TestServer, name: &str, code: &str, password: &str) -> Client {
    let mut c = config(s, name);
    c.handshake_code = code.into();
    c.session_password = Some(password.into());
    client(s, c)
}

fn argon2_runs(s: &TestServer) -> u64 {
    s.state.passwords.argon2_runs()
}

fn admitted(s: &TestServer, device: &Client) -> bool {
    let devices: Vec<DeviceView> = s.admin_ok("GET", "/devices", None);
    devices
        .iter()
        .any(|d| d.device_uuid == device.device_uuid())
}

#[test]
fn wrong_passwords_are_throttled_while_the_right_one_keeps_authorizing() {
    let s = server();
    let good = device(&s, "good", "", RIGHT);
    let start = argon2_runs(&s);
    good.authorize().unwrap();
    assert_eq!(argon2_runs(&s), start + 1, "verified once");
    good.authorize().unwrap();
    device(&s, "good-2", "", RIGHT).authorize().unwrap();
    assert_eq!(argon2_runs(&s), start + 1, "then remembered: no Argon2");

    // The right password cost nothing: the whole budget is left for wrong ones.
    let bad = device(&s, "bad", "", "wrong horse");
    for n in 0..PER_SOURCE.burst {
        assert_eq!(
            refusal(bad.authorize()),
            ErrorCode::WrongSessionPassword,
            "wrong try {n}"
        );
    }
    assert_eq!(argon2_runs(&s), start + 1 + u64::from(PER_SOURCE.burst));
    let runs = argon2_runs(&s);
    let throttled = bad.authorize().unwrap_err();
    assert_eq!(throttled.code, ErrorCode::TooManyAttempts);
    let when = format!("retry in {} s", PER_SOURCE.every_seconds);
    assert!(throttled.message.contains(&when), "{}", throttled.message);
    assert_eq!(refusal(bad.authorize()), ErrorCode::TooManyAttempts);
    assert_eq!(argon2_runs(&s), runs, "throttled tries run no Argon2");

    // Same address, same code: the remembered right password is never throttled.
    good.authorize().unwrap();
    device(&s, "good-3", "", RIGHT).authorize().unwrap();
    assert_eq!(argon2_runs(&s), runs);
    assert!(!admitted(&s, &bad));
    assert!(admitted(&s, &good));

    // After the period the guesser may try once more, and is told the password is wrong.
    s.clock.advance(PER_SOURCE.every_seconds as i64);
    assert_eq!(refusal(bad.authorize()), ErrorCode::WrongSessionPassword);
    assert_eq!(argon2_runs(&s), runs + 1);
    assert_eq!(refusal(bad.authorize()), ErrorCode::TooManyAttempts);
    assert!(!admitted(&s, &bad));
}

#[test]
fn a_changed_password_makes_the_old_one_wrong_at_once() {
    let s = server();
    let old = device(&s, "a", "", RIGHT);
    old.authorize().unwrap();
    old.authorize().unwrap();

    update_code(
        &s,
        "acme-default",
        json!({"session_password": "battery staple"}),
    );
    let start = argon2_runs(&s);
    assert_eq!(refusal(old.authorize()), ErrorCode::WrongSessionPassword);
    assert_eq!(argon2_runs(&s), start + 1, "no longer remembered");
    let new = device(&s, "a", "", "battery staple");
    new.authorize().unwrap();
    new.authorize().unwrap();
    assert_eq!(argon2_runs(&s), start + 2, "the new one is verified once");

    // Back to the first password: a new hash, so verified again before it is remembered.
    update_code(&s, "acme-default", json!({"session_password": RIGHT}));
    assert_eq!(refusal(new.authorize()), ErrorCode::WrongSessionPassword);
    old.authorize().unwrap();
    old.authorize().unwrap();
    assert_eq!(argon2_runs(&s), start + 4);
}

#[test]
fn an_address_budget_counts_wrong_passwords_on_every_code() {
    let s = server();
    let lab: HandshakeView = s.admin_ok(
        "POST",
        "/handshakes",
        Some((
            "application/json",
            serde_json::to_vec(&json!({
                "code": "lab", "organization": "acme", "items": ["L-1-1"],
            }))
            .unwrap(),
        )),
    );
    update_code(&s, &lab.code, json!({"session_password": "lab password"}));

    let on_default = device(&s, "guess-default", "", "guess");
    let on_lab = device(&s, "guess-lab", "lab", "guess");
    for n in 0..PER_SOURCE.burst {
        let guesser = if n % 2 == 0 { &on_default } else { &on_lab };
        assert_eq!(
            refusal(guesser.authorize()),
            ErrorCode::WrongSessionPassword
        );
    }
    assert_eq!(refusal(on_default.authorize()), ErrorCode::TooManyAttempts);
    assert_eq!(refusal(on_lab.authorize()), ErrorCode::TooManyAttempts);
    // Not yet verified since the start, the lab's right password has to wait like any try...
    let lab_device = device(&s, "lab-device", "lab", "lab password");
    assert_eq!(refusal(lab_device.authorize()), ErrorCode::TooManyAttempts);
    // ...one period, after which it is verified, remembered, and never throttled again.
    s.clock.advance(PER_SOURCE.every_seconds as i64);
    lab_device.authorize().unwrap();
    assert_eq!(refusal(on_lab.authorize()), ErrorCode::WrongSessionPassword);
    assert_eq!(refusal(on_lab.authorize()), ErrorCode::TooManyAttempts);
    lab_device.authorize().unwrap();
}
