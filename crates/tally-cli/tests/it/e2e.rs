//! The whole story through the real SDK: vendor key → issue → activate → import → handshake →
//! authorize → usage → report → statistics, and every refusal a device can meet.

use std::sync::Arc;

use tally_proto::ErrorCode;
use tally_proto::admin::{DeviceView, HandshakeView, UsageRow};
use tally_sdk::{Client, Config};

use crate::common::*;

pub fn config(s: &TestServer, name: &str) -> Config {
    let mut c = Config::new(
        vec![s.url.clone()],
        &s.vendor.verifying_key().to_base64(),
        s.client_dir(name),
        "scanner",
    );
    c.organization = "acme".into();
    c
}

pub fn client(s: &TestServer, c: Config) -> Client {
    Client::with_clock(c, Arc::new(s.clock.clone())).unwrap()
}

pub fn refusal(result: Result<tally_sdk::Authorization, tally_sdk::SdkError>) -> ErrorCode {
    match result {
        Ok(a) => panic!("expected a refusal, got a grant for {:?}", a.grant.items),
        Err(e) => e.code,
    }
}

#[test]
fn one_license_end_to_end() {
    let s = TestServer::start();
    let imported =
        s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let code: HandshakeView = s.admin_ok(
        "POST",
        "/handshakes",
        Some((
            "application/json",
            serde_json::to_vec(&serde_json::json!({
                "code": "scanners", "organization": "acme", "items": imported.items,
            }))
            .unwrap(),
        )),
    );

    let mut c = config(&s, "laptop");
    c.handshake_code = code.code.clone();
    c.friendly_name = Some("Front desk laptop".into());
    let device = client(&s, c);
    let auth = device.authorize().unwrap();
    assert!(!auth.cached);
    assert_eq!(auth.grant.handshake_code, "scanners");
    assert_eq!(auth.grant.items[0].item_id, "L-1-1");
    assert_eq!(auth.grant.valid_until, T0 + 7 * DAY);

    device.record_usage("scan", 2).unwrap();
    device.record_usage("scan.symbology.qr", 1).unwrap();
    s.clock.advance(180);
    device.record_usage("scan", 5).unwrap();
    let outcome = device.flush().unwrap();
    assert_eq!(outcome.acknowledged, 2, "{outcome:?}");
    assert_eq!(device.status().unwrap().pending_reports, 0);

    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage?from=2026-06-01&to=2026-06-01", None);
    let count = |feature: &str| {
        rows.iter()
            .find(|r| {
                r.feature == feature && r.handshake_code == "scanners" && r.day == "2026-06-01"
            })
            .map(|r| r.count)
    };
    assert_eq!(count("scan"), Some(7));
    assert_eq!(count("scan.symbology.qr"), Some(1));

    let devices: Vec<DeviceView> = s.admin_ok("GET", "/devices", None);
    assert_eq!(devices.len(), 1);
    assert_eq!(
        devices[0].friendly_name.as_deref(),
        Some("Front desk laptop")
    );
    assert_eq!(devices[0].device_uuid, device.device_uuid());
}

#[test]
fn refusals_carry_stable_codes() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    s.import(&s.activated("L-2", "other", vec![per_device("L-2-1", "scanner", 5, 10)]));

    let mut c = config(&s, "unknown-code");
    c.handshake_code = "nope".into();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::UnknownHandshakeCode
    );

    let mut c = config(&s, "wrong-org");
    c.handshake_code = "other-default".into();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::HandshakeOrganizationMismatch
    );

    let mut c = config(&s, "unknown-org");
    c.organization = "ghost".into();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::UnknownOrganization
    );

    let mut c = config(&s, "wrong-product");
    c.product = "viewer".into();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::NoMatchingLicense
    );

    let mut c = config(&s, "wrong-module");
    c.modules = vec!["ocr".into()];
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::NoMatchingLicense
    );

    let mut c = config(&s, "trial");
    c.organization = String::new();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::TrialUnavailable
    );

    // Past the end and its 7 days of grace.
    s.clock.advance(373 * DAY);
    assert_eq!(
        refusal(client(&s, config(&s, "late")).authorize()),
        ErrorCode::LicenseExpired
    );
}

#[test]
fn per_device_quota_refuses_new_devices_and_keeps_known_ones() {
    let s = TestServer::start();
    // quantity 4 with 10 % grace: round(0.4) = 0 extra places.
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 4, 10)]));
    let devices: Vec<Client> = (0..4)
        .map(|i| client(&s, config(&s, &format!("d{i}"))))
        .collect();
    for d in &devices {
        d.authorize().unwrap();
    }
    let fifth = client(&s, config(&s, "d4"));
    assert_eq!(refusal(fifth.authorize()), ErrorCode::DeviceQuotaExceeded);
    // Known devices keep working.
    for d in &devices {
        assert!(!d.authorize().unwrap().cached);
    }
    // A registration lapses after its active window (30 days) without contact.
    s.clock.advance(31 * DAY);
    fifth.authorize().unwrap();
}

#[test]
fn grace_admits_ten_percent_more_new_devices() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 10, 10)]));
    let admitted = (0..12)
        .filter(|i| client(&s, config(&s, &format!("g{i}"))).authorize().is_ok())
        .count();
    assert_eq!(admitted, 11);
}

#[test]
fn the_next_item_serves_when_the_first_is_full() {
    let s = TestServer::start();
    let mut early = per_device("L-1-1", "scanner", 1, 0);
    early.end = T0 + 30 * DAY;
    s.import(&s.activated(
        "L-1",
        "acme",
        vec![early, per_device("L-1-2", "scanner", 1, 0)],
    ));
    let a = client(&s, config(&s, "a")).authorize().unwrap();
    let b = client(&s, config(&s, "b")).authorize().unwrap();
    assert_eq!(a.grant.items[0].item_id, "L-1-1");
    assert_eq!(b.grant.items[0].item_id, "L-1-2");
    assert_eq!(
        refusal(client(&s, config(&s, "c")).authorize()),
        ErrorCode::DeviceQuotaExceeded
    );
}

#[test]
fn offline_the_cached_grant_works_until_it_expires() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let dir_config = config(&s, "offline");
    let online = client(&s, dir_config.clone());
    online.authorize().unwrap();
    online.record_usage("scan", 4).unwrap();
    let (data, vendor) = s.stop();

    // The server is gone; the same device (a new process) uses its cached grant.
    let clock = tally_core::ManualClock::new(T0 + 3 * DAY);
    let offline = Client::with_clock(dir_config.clone(), Arc::new(clock.clone())).unwrap();
    let auth = offline.authorize().unwrap();
    assert!(auth.cached);
    assert_eq!(auth.warnings, [ErrorCode::CachedGrantUsed]);
    assert_eq!(
        offline.flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    assert_eq!(
        offline.status().unwrap().pending_reports,
        1,
        "the usage is kept for later"
    );

    clock.set(T0 + 7 * DAY + 1);
    assert_eq!(refusal(offline.authorize()), ErrorCode::GrantExpired);

    // The usage kept offline is delivered once the server is back.
    let back = TestServer::start_in(data, vendor, "machine-1");
    back.clock.set(T0 + 3 * DAY);
    let mut c = dir_config;
    c.servers = vec![back.url.clone()];
    let reconnected = Client::with_clock(c, Arc::new(back.clock.clone())).unwrap();
    reconnected.authorize().unwrap();
    reconnected.flush().unwrap();
    let rows: Vec<UsageRow> = back.admin_ok("GET", "/stats/usage", None);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 4);
}

#[test]
fn a_report_retried_is_counted_once() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let c = config(&s, "retry");
    let device = client(&s, c.clone());
    device.authorize().unwrap();
    device.record_usage("page", 9).unwrap();
    // A first attempt while the network is down fixes the report and its id on disk.
    let mut down = c.clone();
    down.servers = vec!["http://127.0.0.1:9".into()];
    assert_eq!(
        client(&s, down).flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    // Keep a copy of the device's state as it was before the successful flush, as if the
    // acknowledgement had been lost, then send again from that copy.
    let before = tempfile::tempdir().unwrap();
    copy_dir(&c.state_dir, before.path());
    assert_eq!(device.flush().unwrap().acknowledged, 1);
    let mut replay = c.clone();
    replay.state_dir = before.path().to_owned();
    let again = client(&s, replay).flush().unwrap();
    assert_eq!(again.duplicates, 1, "{again:?}");
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 9);
}

#[test]
fn reports_travel_in_the_report_session_and_a_new_one_opens_when_it_ends() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let device = client(&s, config(&s, "session"));
    device.authorize().unwrap();
    device.record_usage("scan", 4).unwrap();
    assert_eq!(device.flush().unwrap().acknowledged, 1);
    // The report went through the session the authorization opened.
    assert_eq!(s.state.sessions.len(), 1);
    assert_eq!(
        s.state.replay.len(),
        1,
        "only the authorization was HPKE-sealed"
    );
    // A day later the session is over: the SDK authorizes again, which opens a new session,
    // and reports in it; nothing is lost or counted twice.
    s.clock.advance(DAY + 600);
    device.record_usage("scan", 5).unwrap();
    let second = device.flush().unwrap();
    assert_eq!((second.acknowledged, second.duplicates), (1, 0));
    assert_eq!(
        s.state.replay.len(),
        1,
        "one new authorization (the first one's entry expired)"
    );
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 9);
}

#[test]
fn a_session_the_server_refuses_is_replaced_by_a_new_authorization() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    // The device keeps its own clock; the server's runs a day ahead after the authorization, so
    // the device still believes in its session and only the server's refusal tells it otherwise.
    let device_clock = tally_core::ManualClock::new(T0);
    let device =
        Client::with_clock(config(&s, "own-clock"), Arc::new(device_clock.clone())).unwrap();
    device.authorize().unwrap();
    s.clock.advance(DAY + 600);
    device.record_usage("scan", 3).unwrap();
    let flushed = device.flush().unwrap();
    assert_eq!((flushed.acknowledged, flushed.pending), (1, 0));
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 3);
    assert_eq!(
        s.state.sessions.len(),
        1,
        "only the new session was accepted, not the expired one"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_changed_server_identity_refuses_clients() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let (data, vendor) = s.stop();
    let moved = TestServer::start_in(data, vendor, "another-machine");
    let c = config(&moved, "moved");
    assert_eq!(
        refusal(client(&moved, c).authorize()),
        ErrorCode::IdentityMismatch
    );
}

#[test]
fn a_clock_moved_back_refuses_the_cached_grant() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let c = config(&s, "rollback");
    client(&s, c.clone()).authorize().unwrap();
    let (_data, _vendor) = s.stop();
    let clock = tally_core::ManualClock::new(T0 + 2 * DAY);
    let offline = Client::with_clock(c, Arc::new(clock.clone())).unwrap();
    assert!(offline.authorize().unwrap().cached);
    clock.set(T0 + DAY);
    assert_eq!(refusal(offline.authorize()), ErrorCode::ClockRollback);
    clock.set(T0 + 2 * DAY + 60);
    assert!(
        offline.authorize().unwrap().cached,
        "a sane clock works again"
    );
}

#[test]
fn a_server_the_vendor_did_not_activate_is_not_trusted() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    // The client trusts another vendor: this server's licenses prove nothing to it.
    let other_vendor = tally_crypto::SigningKey::generate().unwrap();
    let mut c = config(&s, "rogue");
    c.vendor_public_key = other_vendor.verifying_key().to_base64();
    assert_eq!(
        refusal(client(&s, c).authorize()),
        ErrorCode::ServerNotTrusted
    );
}

#[test]
fn a_tampered_cached_grant_is_refused_offline() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let c = config(&s, "tamper");
    client(&s, c.clone()).authorize().unwrap();
    let _kept = s.stop();
    let path = c.state_dir.join("grant.json");
    let mut cache: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Extend the grant's validity by rewriting its payload, keeping the old signature.
    let payload = tally_crypto::b64_decode(cache["grant"]["payload"].as_str().unwrap()).unwrap();
    let mut grant: tally_proto::wire::Grant = serde_json::from_slice(&payload).unwrap();
    grant.valid_until += 365 * DAY;
    cache["grant"]["payload"] =
        tally_crypto::b64_encode(&serde_json::to_vec(&grant).unwrap()).into();
    std::fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
    let offline = Client::with_clock(c, Arc::new(tally_core::ManualClock::new(T0 + DAY))).unwrap();
    assert_eq!(refusal(offline.authorize()), ErrorCode::GrantInvalid);
}

#[test]
fn the_background_thread_delivers_usage_and_a_last_flush_on_stop() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let device = Arc::new(client(&s, config(&s, "reporter")));
    device.authorize().unwrap();
    device.record_usage("scan", 1).unwrap();
    let background = device
        .spawn_background(std::time::Duration::from_secs(3600))
        .unwrap();
    device.record_usage("scan", 2).unwrap();
    drop(background); // stopping sends what is left
    assert_eq!(device.status().unwrap().pending_reports, 0);
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage", None);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 3);
}
