//! The license engine seen from a device: every license type, consumption order, renewal,
//! session passwords, validation fields, disabled codes and the public trial.

use std::sync::Arc;

use serde_json::json;
use tally_proto::ErrorCode;
use tally_proto::license::LicenseType;
use tally_sdk::Client;

use crate::common::*;
use crate::e2e::{client, config, refusal};

fn server_with(items: Vec<tally_proto::license::LicenseItem>) -> TestServer {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", items));
    s
}

fn device(s: &TestServer, name: &str) -> Client {
    client(s, config(s, name))
}

#[test]
fn per_active_device_counts_distinct_devices_per_day() {
    let s = server_with(vec![typed("L-1-1", LicenseType::PerActiveDevice, 2, 0)]);
    device(&s, "a").authorize().unwrap();
    device(&s, "b").authorize().unwrap();
    assert_eq!(
        refusal(device(&s, "c").authorize()),
        ErrorCode::DeviceQuotaExceeded
    );
    device(&s, "a").authorize().unwrap(); // a device seen today keeps working
    s.clock.advance(DAY);
    device(&s, "c").authorize().unwrap();
}

#[test]
fn concurrent_seats_expire_after_the_next_slice_unless_reports_renew_them() {
    let s = server_with(vec![typed("L-1-1", LicenseType::ConcurrentDevice, 1, 0)]);
    let a = device(&s, "a");
    let grant = a.authorize().unwrap().grant;
    assert_eq!(
        grant.seat_until,
        Some(T0 + 360),
        "to the end of the next 3-minute slice"
    );
    assert_eq!(
        refusal(device(&s, "b").authorize()),
        ErrorCode::SeatsExhausted
    );
    s.clock.advance(300);
    a.record_usage("scan", 1).unwrap();
    a.flush().unwrap(); // renews the seat to the end of the next slice: T0 + 540
    s.clock.advance(100);
    assert_eq!(
        refusal(device(&s, "b").authorize()),
        ErrorCode::SeatsExhausted
    );
    s.clock.advance(200); // T0 + 600: a crashed, its seat lapsed
    device(&s, "b").authorize().unwrap();
}

#[test]
fn concurrent_overuse_is_bounded_by_the_grace() {
    let s = server_with(vec![typed("L-1-1", LicenseType::ConcurrentDevice, 10, 10)]);
    let admitted = (0..13)
        .filter(|i| device(&s, &format!("d{i}")).authorize().is_ok())
        .count();
    assert_eq!(admitted, 11, "10 seats and one exception seat");
}

#[test]
fn instance_licenses_count_the_declared_instances() {
    for (license_type, refusal_code) in [
        (LicenseType::ConcurrentInstance, ErrorCode::SeatsExhausted),
        (LicenseType::PerInstance, ErrorCode::DeviceQuotaExceeded),
    ] {
        let s = server_with(vec![typed("L-1-1", license_type, 4, 0)]);
        let mut three = config(&s, "three");
        three.instances = Some(3);
        client(&s, three).authorize().unwrap();
        let mut two = config(&s, "two");
        two.instances = Some(2);
        assert_eq!(
            refusal(client(&s, two.clone()).authorize()),
            refusal_code,
            "{license_type:?}"
        );
        two.instances = Some(1);
        client(&s, two).authorize().unwrap();
    }
}

#[test]
fn per_usage_refuses_every_device_at_quantity_plus_five_percent_then_the_next_item_serves() {
    let s = TestServer::start();
    let mut first = typed("L-1-1", LicenseType::PerUsage, 100, 5);
    first.end = T0 + 30 * DAY;
    s.import(&s.activated("L-1", "acme", vec![first]));
    let a = device(&s, "a");
    let b = device(&s, "b");
    a.authorize().unwrap();
    a.record_usage("scan", 104).unwrap();
    a.record_usage("scan.symbology.qr", 50).unwrap(); // sub-features are not charged
    a.flush().unwrap();
    b.authorize().unwrap();
    a.record_usage("scan", 1).unwrap();
    a.flush().unwrap();
    assert_eq!(refusal(a.authorize()), ErrorCode::UsageQuotaExceeded);
    assert_eq!(refusal(b.authorize()), ErrorCode::UsageQuotaExceeded);

    // More quota arrives as another license; the same clients continue unchanged.
    s.import(&s.activated(
        "L-2",
        "acme",
        vec![typed("L-2-1", LicenseType::PerUsage, 1000, 5)],
    ));
    assert_eq!(a.authorize().unwrap().grant.items[0].item_id, "L-2-1");
    let items: Vec<tally_proto::admin::ItemView> = s.admin_ok("GET", "/items", None);
    assert_eq!(
        items.iter().find(|i| i.item_id == "L-1-1").unwrap().used,
        105
    );
}

#[test]
fn per_domain_counts_distinct_domains() {
    let s = server_with(vec![typed("L-1-1", LicenseType::PerDomain, 2, 0)]);
    let on = |name: &str, domain: Option<&str>| {
        let mut c = config(&s, name);
        c.validation.domain = domain.map(String::from);
        client(&s, c).authorize()
    };
    on("a", Some("a.example")).unwrap();
    on("b", Some("B.example")).unwrap();
    assert_eq!(
        refusal(on("c", Some("c.example"))),
        ErrorCode::DomainQuotaExceeded
    );
    on("d", Some("a.example")).unwrap(); // another device on a known domain
    on("e", Some("b.example")).unwrap(); // domains compare case-insensitively
    assert_eq!(refusal(on("f", None)), ErrorCode::ValidationFieldMismatch);
}

#[test]
fn expired_and_future_items_do_not_authorize() {
    let s = TestServer::start();
    let mut future = per_device("L-1-1", "scanner", 5, 10);
    future.start = T0 + DAY;
    s.import(&s.activated("L-1", "acme", vec![future]));
    assert_eq!(
        refusal(device(&s, "a").authorize()),
        ErrorCode::LicenseNotYetValid
    );
    s.clock.advance(DAY);
    device(&s, "a").authorize().unwrap();
    // Past the end and its 7 days of grace.
    s.clock.advance(373 * DAY);
    assert_eq!(
        refusal(device(&s, "a").authorize()),
        ErrorCode::LicenseExpired
    );
}

#[test]
fn items_are_consumed_in_default_order_until_the_admin_reorders_them() {
    let s = TestServer::start();
    let late = per_device("L-1-1", "scanner", 5, 10);
    let mut early = per_device("L-1-2", "scanner", 5, 10);
    early.end = T0 + 60 * DAY;
    s.import(&s.activated("L-1", "acme", vec![late, early]));
    assert_eq!(
        device(&s, "a").authorize().unwrap().grant.items[0].item_id,
        "L-1-2",
        "closest expiry first"
    );
    let view = update_code(&s, "acme-default", json!({"items": ["L-1-1", "L-1-2"]}));
    assert!(view.custom_order);
    assert_eq!(view.items, ["L-1-1", "L-1-2"]);
    assert_eq!(
        device(&s, "b").authorize().unwrap().grant.items[0].item_id,
        "L-1-1"
    );
    let view = update_code(&s, "acme-default", json!({"default_order": true}));
    assert_eq!(view.items, ["L-1-2", "L-1-1"]);
}

#[test]
fn a_renewal_keeps_clients_working_without_changes() {
    let s = TestServer::start();
    let mut old = per_device("L-1-1", "scanner", 5, 10);
    old.end = T0 + 10 * DAY;
    s.import(&s.activated("L-1", "acme", vec![old]));
    let a = device(&s, "a");
    assert_eq!(a.authorize().unwrap().grant.items[0].item_id, "L-1-1");
    s.import(&s.activated("L-2", "acme", vec![per_device("L-2-1", "scanner", 5, 10)]));
    s.clock.advance(10 * DAY);
    assert_eq!(a.authorize().unwrap().grant.items[0].item_id, "L-2-1");
}

#[test]
fn session_passwords_validation_fields_and_disabled_codes_refuse() {
    let s = server_with(vec![per_device("L-1-1", "scanner", 5, 10)]);
    let view = update_code(
        &s,
        "acme-default",
        json!({"session_password": "correct horse"}),
    );
    assert!(view.has_session_password);
    assert_eq!(
        refusal(device(&s, "a").authorize()),
        ErrorCode::WrongSessionPassword
    );
    let mut c = config(&s, "a");
    c.session_password = Some("wrong horse".into());
    assert_eq!(
        refusal(client(&s, c.clone()).authorize()),
        ErrorCode::WrongSessionPassword
    );
    c.session_password = Some("correct horse".into());
    client(&s, c.clone()).authorize().unwrap();

    update_code(
        &s,
        "acme-default",
        json!({"validation": {"domains": ["*.acme.com"], "process_names": ["scan*.exe"]}}),
    );
    assert_eq!(
        refusal(client(&s, c.clone()).authorize()),
        ErrorCode::ValidationFieldMismatch
    );
    c.validation.domain = Some("portal.acme.com".into());
    c.validation.process = Some("scanner.exe".into());
    client(&s, c.clone()).authorize().unwrap();
    c.validation.domain = Some("evil.com".into());
    assert_eq!(
        refusal(client(&s, c.clone()).authorize()),
        ErrorCode::ValidationFieldMismatch
    );
    c.validation.domain = Some("portal.acme.com".into());

    update_code(&s, "acme-default", json!({"enabled": false}));
    assert_eq!(
        refusal(client(&s, c.clone()).authorize()),
        ErrorCode::HandshakeDisabled
    );
    let view = update_code(
        &s,
        "acme-default",
        json!({"enabled": true, "session_password": "", "validation": {}}),
    );
    assert!(!view.has_session_password && view.enabled);
    device(&s, "b").authorize().unwrap();
}

#[test]
fn bad_handshake_changes_are_refused_and_change_nothing() {
    let s = server_with(vec![per_device("L-1-1", "scanner", 5, 10)]);
    for (body, name) in [
        (json!({"session_password": "short"}), "invalid_input"),
        (json!({"items": []}), "invalid_input"),
        (
            json!({"items": ["L-1-1"], "default_order": true}),
            "invalid_input",
        ),
        (json!({"items": ["nope"]}), "not_found"),
        (json!({"validation": {"domains": [""]}}), "invalid_input"),
        (json!({"colour": "blue"}), "invalid_input"),
    ] {
        let (status, text) = patch_code(&s, "acme-default", &body);
        assert_ne!(status, 200);
        let err: tally_proto::ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(err.name, name, "{body}");
    }
    device(&s, "a").authorize().unwrap();
}

#[test]
fn the_public_trial_is_given_once_per_device() {
    let s = TestServer::start_with(|settings| {
        settings.trial_organization = Some("trial".into());
        settings.trial_days = 7;
    });
    s.import(&s.activated(
        "T-1",
        "trial",
        vec![per_device("T-1-1", "scanner", 1000, 10)],
    ));
    let trial = |name: &str| {
        let mut c = config(&s, name);
        c.organization = String::new();
        client(&s, c)
    };
    let a = trial("a");
    let grant = a.authorize().unwrap().grant;
    assert_eq!(grant.handshake_code, "trial-default");
    assert!(grant.valid_until <= T0 + 7 * DAY);
    s.clock.advance(3 * DAY);
    assert!(
        a.authorize().unwrap().grant.valid_until <= T0 + 7 * DAY,
        "the trial does not restart"
    );
    s.clock.advance(5 * DAY);
    assert_eq!(refusal(a.authorize()), ErrorCode::TrialUnavailable);
    trial("b").authorize().unwrap();
}

#[test]
fn simultaneous_requests_never_take_more_seats_than_exist() {
    for license_type in [
        LicenseType::ConcurrentDevice,
        LicenseType::PerActiveDevice,
        LicenseType::PerDevice,
    ] {
        let s = server_with(vec![typed("L-1-1", license_type, 3, 0)]);
        let admitted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..24)
                .map(|i| {
                    let c = config(&s, &format!("c{i}"));
                    let clock = s.clock.clone();
                    scope.spawn(move || {
                        Client::with_clock(c, Arc::new(clock))
                            .unwrap()
                            .authorize()
                            .is_ok()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count()
        });
        assert_eq!(admitted, 3, "{license_type:?}");
    }
}
