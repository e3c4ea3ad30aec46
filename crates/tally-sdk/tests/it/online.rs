//! Against the in-test server: the wire contract end to end (hello and its certificate, sealed
//! authorize, reports in the report session, stale stamps, standby servers, refusals, untrusted
//! servers, lost answers and the background thread).

use std::sync::Arc;
use std::time::Duration;

use tally_core::{Clock, ManualClock};
use tally_proto::license::LicenseType;
use tally_proto::slice::SLICE_SECONDS;
use tally_sdk::ErrorCode;

use crate::fake_server::FakeServer;
use crate::fixtures::*;

pub fn server(f: &Fixture) -> FakeServer {
    FakeServer::start(
        f.server.clone(),
        vec![f.certificate.clone()],
        f.clock.clone(),
    )
}

/// A standby server of the fixture's vendor, with its own keys and activation.
pub fn standby(f: &Fixture) -> FakeServer {
    let (keys, certificate) = f.standby("server-2");
    FakeServer::start(keys, vec![certificate], f.clock.clone())
}

#[test]
fn authorize_then_report_usage_online() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    assert!(!auth.cached);
    assert!(auth.warnings.is_empty(), "{:?}", auth.warnings);
    assert_eq!(auth.grace_until, None);
    assert_eq!(auth.grant.device_uuid, client.device_uuid());
    // A per-device item with the default caps: 7 offline days, renewed after one.
    assert_eq!(auth.grant.valid_until, T0 + 7 * DAY);
    assert_eq!(auth.grant.renew_at, T0 + DAY);
    assert_eq!(auth.grant.seat_until, None);
    assert_eq!(auth.grant.items[0].license_type, LicenseType::PerDevice);
    assert_eq!(auth.grant.items[0].grace_end, GRACE_END);
    {
        let b = s.behaviour();
        let req = &b.authorize_requests[0];
        assert_eq!(req.product, "scanner");
        assert_eq!(req.organization, "acme");
        assert_eq!(req.buffer_days, None, "the license decides by default");
        assert_eq!(req.stamp.sent_at, T0);
        assert_eq!(req.stamp.request_id.len(), 32);
    }
    let summary = client.status().unwrap().grant.unwrap();
    assert_eq!(
        (summary.renew_at, summary.seat_until, summary.grace_end),
        (T0 + DAY, None, GRACE_END)
    );

    client.record_usage("scan", 2).unwrap();
    client.record_usage("scan.symbology.qr", 1).unwrap();
    f.clock.advance(SLICE_SECONDS);
    client.record_usage("scan", 5).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.sent, 2, "{outcome:?}");
    assert_eq!(outcome.acknowledged, 2);
    assert_eq!(outcome.duplicates, 0);
    assert_eq!(outcome.refused, 0);
    assert_eq!(outcome.pending, 0);
    assert!(!outcome.usage_exhausted);
    assert_eq!(s.total("scan"), 7);
    assert_eq!(s.total("scan.symbology.qr"), 1);
    {
        let b = s.behaviour();
        assert_eq!(
            b.authorize_requests.len(),
            1,
            "reports travel in the authorization's session"
        );
        let sent = &b.report_requests[0];
        assert_eq!(sent.handshake_code, "acme-default", "the session's code");
        assert_eq!(sent.device_uuid, client.device_uuid());
        assert_eq!(sent.seq, 1);
        assert_eq!(sent.request.sent_at, T0 + SLICE_SECONDS);
    }
    assert_eq!(client.status().unwrap().pending_reports, 0);
    assert_eq!(client.flush().unwrap().sent, 0);
    assert_eq!(s.behaviour().report_requests.len(), 1);

    // check() answers from the held grant.
    assert_eq!(client.check().unwrap().grant, auth.grant);

    // The grant from the server is kept: later, with no server, it is used offline.
    let offline = f.offline_client();
    f.clock.advance(DAY);
    let cached = offline.authorize().unwrap();
    assert!(cached.cached);
    assert_eq!(cached.warnings, [ErrorCode::CachedGrantUsed]);
    assert_eq!(cached.grant, auth.grant);
}

#[test]
fn a_shorter_buffer_asked_by_the_client_lowers_the_offline_days() {
    let f = Fixture::new();
    let s = server(&f);
    let mut config = f.config(&[&s.url]);
    config.buffer_days = Some(1);
    let client = tally_sdk::Client::with_clock(config, Arc::new(f.clock.clone())).unwrap();
    let auth = client.authorize().unwrap();
    assert_eq!(s.behaviour().authorize_requests[0].buffer_days, Some(1));
    assert_eq!(auth.grant.valid_until, T0 + DAY);
    assert_eq!(auth.grant.renew_at, T0 + DAY / 2, "renewed half-way");
    // Asking for more than the license allows gets what it allows.
    let mut config = f.config(&[&s.url]);
    config.buffer_days = Some(3650);
    let client = tally_sdk::Client::with_clock(config, Arc::new(f.clock.clone())).unwrap();
    assert_eq!(client.authorize().unwrap().grant.valid_until, T0 + 7 * DAY);
}

#[test]
fn a_standby_is_tried_when_the_main_server_does_not_answer() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[UNREACHABLE, &s.url]);
    assert!(!client.authorize().unwrap().cached);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
}

#[test]
fn reports_go_to_a_standby_when_the_session_server_goes_down() {
    let f = Fixture::new();
    let main = server(&f);
    let standby = standby(&f);
    let client = f.client(&[&main.url, &standby.url]);
    assert_eq!(client.authorize().unwrap().grant.server_uuid, "server-1");
    assert!(standby.behaviour().authorize_requests.is_empty());

    main.behaviour().down = true;
    client.record_usage("scan", 4).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.acknowledged, 1, "{outcome:?}");
    assert_eq!(standby.total("scan"), 4);
    assert_eq!(main.total("scan"), 0);
    assert_eq!(standby.behaviour().authorize_requests.len(), 1);
    // The standby's grant is held now.
    assert_eq!(client.check().unwrap().grant.server_uuid, "server-2");

    // With the main server back, reports stay in the standby's session.
    main.behaviour().down = false;
    client.record_usage("scan", 1).unwrap();
    client.flush().unwrap();
    assert_eq!(standby.total("scan"), 5);
    assert_eq!(main.behaviour().authorize_requests.len(), 1);
}

#[test]
fn the_instances_of_one_activation_each_prove_themselves_and_serve_in_turn() {
    let f = Fixture::new();
    let (second_keys, activated) = f.second_instance("server-2");
    let first = FakeServer::start(f.server.clone(), vec![activated.clone()], f.clock.clone());
    let second = FakeServer::start(second_keys, vec![activated.clone()], f.clock.clone());
    let client = f.client(&[&first.url, &second.url]);
    let auth = client.authorize().unwrap();
    assert!(!auth.cached);
    assert_eq!(auth.grant.server_uuid, "server-1");
    assert!(second.behaviour().authorize_requests.is_empty());

    first.behaviour().down = true;
    let auth = client.authorize().unwrap();
    assert!(!auth.cached, "the second instance answered");
    assert_eq!(auth.grant.server_uuid, "server-2");
    client.record_usage("scan", 2).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
    assert_eq!(second.total("scan"), 2);

    // An instance the activation does not name, holding the same file, is not trusted: its
    // hello can only show another instance's certificate.
    let outsider = FakeServer::start(
        ServerKeys::generate("server-3"),
        vec![activated],
        f.clock.clone(),
    );
    let mut config = f.config(&[&outsider.url]);
    config.state_dir = f.dir.path().join("another-device");
    let another = tally_sdk::Client::with_clock(config, Arc::new(f.clock.clone())).unwrap();
    let e = another.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerNotTrusted);
    assert!(e.message.contains("other keys"), "{e}");
    assert!(outsider.behaviour().authorize_requests.is_empty());
}

#[test]
fn requests_carry_the_server_clock() {
    let f = Fixture::new();
    // The server's clock is an hour ahead of the device's.
    let s = FakeServer::start(
        f.server.clone(),
        vec![f.certificate.clone()],
        ManualClock::new(T0 + 3600),
    );
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    assert_eq!(s.behaviour().authorize_requests[0].stamp.sent_at, T0 + 3600);
    // The grant is in server time.
    assert_eq!(auth.grant.issued_at, T0 + 3600);
    client.record_usage("scan", 1).unwrap();
    client.flush().unwrap();
    assert_eq!(
        s.behaviour().report_requests[0].request.sent_at,
        T0 + 3600,
        "the session keeps the offset learned at authorization"
    );
    assert_eq!(s.behaviour().stale_refused, 0);
}

/// The server seals `stale_request` (it opened the envelope; see `check_stamp` in
/// `tally-server/src/api/client.rs`), so the SDK gets it as a sealed refusal.
#[test]

fn a_stale_authorization_stamp_is_retried_once() {
    let f = Fixture::new();
    let s = FakeServer::start(
        f.server.clone(),
        vec![f.certificate.clone()],
        ManualClock::new(T0 + 3600),
    );
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();

    // Between hello and authorize the server clock jumps: the first envelope is stale.
    s.behaviour().jump_clock_once = 1000;
    client.authorize().unwrap();
    let b = s.behaviour();
    assert_eq!(b.stale_refused, 1);
    assert_eq!(
        b.authorize_requests.len(),
        2,
        "the stale request is retried"
    );
    let retried = &b.authorize_requests[1];
    assert_eq!(retried.stamp.sent_at, s.clock.now());
    assert_ne!(
        retried.stamp.request_id,
        b.authorize_requests[0].stamp.request_id
    );
}

#[test]
fn a_stale_report_opens_a_new_session_and_is_sent_once_more() {
    let f = Fixture::new();
    let s = FakeServer::start(
        f.server.clone(),
        vec![f.certificate.clone()],
        ManualClock::new(T0 + 3600),
    );
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("scan", 3).unwrap();
    // The server clock jumps after the session opened: the report's time is stale.
    s.behaviour().jump_clock_once = 1000;
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.acknowledged, 1, "{outcome:?}");
    assert_eq!(s.total("scan"), 3);
    let b = s.behaviour();
    assert_eq!(b.stale_refused, 1);
    assert_eq!(b.authorize_requests.len(), 2, "a new session, a new offset");
    assert_eq!(b.authorize_requests[1].stamp.sent_at, s.clock.now());
    let sent = b.report_requests.last().unwrap();
    assert_eq!(sent.request.sent_at, s.clock.now());
}

#[test]
fn a_refusal_is_returned_and_never_replaced_by_the_cache() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    s.behaviour().refuse_authorize = Some(ErrorCode::DeviceQuotaExceeded);
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::DeviceQuotaExceeded);
    assert_eq!(e.server_code, Some(130));
    assert!(e.message.contains("refused by the fake server"), "{e}");

    // A refusal by the main server also stops the search: the standby is not asked.
    let standby = server(&f);
    let both = f.client(&[&s.url, &standby.url]);
    assert_eq!(
        both.authorize().unwrap_err().code,
        ErrorCode::DeviceQuotaExceeded
    );
    assert!(standby.behaviour().authorize_requests.is_empty());
}

#[test]
fn a_plain_error_body_is_a_refusal_too() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    s.behaviour().plain_error = Some((400, ErrorCode::BadEnvelope));
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::BadEnvelope);
    client.record_usage("scan", 1).unwrap();
    f.authorize_directly(&client);
    assert_eq!(client.flush().unwrap_err().code, ErrorCode::BadEnvelope);
    assert_eq!(client.status().unwrap().pending_reports, 1);

    // Also when the report session is refused in plain JSON: reports are kept.
    s.behaviour().plain_error = None;
    client.authorize().unwrap();
    s.behaviour().plain_error = Some((400, ErrorCode::BadEnvelope));
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap_err().code, ErrorCode::BadEnvelope);
    assert_eq!(client.status().unwrap().pending_reports, 2);
    s.behaviour().plain_error = None;
    assert_eq!(client.flush().unwrap().acknowledged, 2);
    assert_eq!(s.total("scan"), 2);
}

#[test]
fn a_server_without_a_vendor_activation_is_not_trusted() {
    let f = Fixture::new();
    let other_vendor = tally_crypto::SigningKey::generate().unwrap();
    let forged = certificate(
        &other_vendor,
        &f.server.identity,
        "L-1",
        vec![item("L-1-1", END)],
    );
    let s = FakeServer::start(f.server.clone(), vec![forged], f.clock.clone());
    let client = f.client(&[&s.url]);
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerNotTrusted);
    assert!(e.message.contains("not the vendor's"), "{e}");
    assert!(
        s.behaviour().authorize_requests.is_empty(),
        "nothing is sent to it"
    );

    // A certificate of the right vendor for other keys proves nothing either.
    let elsewhere = ServerKeys::generate("server-2");
    let theirs = certificate(
        &f.vendor,
        &elsewhere.identity,
        "L-1",
        vec![item("L-1-1", END)],
    );
    let s = FakeServer::start(f.server.clone(), vec![theirs], f.clock.clone());
    let e = f.client(&[&s.url]).authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerNotTrusted);
    assert!(e.message.contains("other keys"), "{e}");

    // Nor does a server that shows no certificate at all (no license imported yet).
    let bare = server(&f);
    bare.behaviour().hello_certificate = None;
    assert_eq!(
        f.client(&[&bare.url]).authorize().unwrap_err().code,
        ErrorCode::ServerNotTrusted
    );
    assert!(bare.behaviour().authorize_requests.is_empty());

    // Usage is not given to it either; it is kept.
    f.authorize_directly(&client);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::ServerNotTrusted
    );
    assert_eq!(client.status().unwrap().pending_reports, 1);
    // The held grant is used meanwhile: an untrusted server is no server.
    let auth = client.authorize().unwrap();
    assert!(auth.cached);
}

#[test]
fn a_server_of_another_protocol_counts_as_no_server() {
    let f = Fixture::new();
    let s = server(&f);
    s.behaviour().old_protocol = true;
    let client = f.client(&[&s.url]);
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerUnreachable);
    assert!(e.message.contains("HTTP 404"), "{e}");
    f.authorize_directly(&client);
    assert!(client.authorize().unwrap().cached);
}

#[test]
fn a_report_whose_answer_was_lost_is_counted_once() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("page", 9).unwrap();
    s.behaviour().lose_report_answer_once = true;
    // The session is given up, a new one opened and the same report sent again at once.
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.acknowledged, 1);
    assert_eq!(outcome.duplicates, 1, "{outcome:?}");
    assert_eq!(outcome.pending, 0);
    assert_eq!(s.total("page"), 9);
    assert_eq!(s.behaviour().authorize_requests.len(), 2);
}

#[test]
fn a_report_whose_answer_was_lost_with_the_network_is_counted_once_after_a_restart() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("page", 9).unwrap();
    {
        let mut b = s.behaviour();
        b.lose_report_answer_once = true;
        b.down_after_lost_answer = true;
    }
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    assert_eq!(s.total("page"), 9, "the server counted it");
    assert_eq!(client.status().unwrap().pending_reports, 1);
    drop(client);

    s.behaviour().down = false;
    let restarted = f.client(&[&s.url]);
    let again = restarted.flush().unwrap();
    assert_eq!(again.acknowledged, 1);
    assert_eq!(again.duplicates, 1, "{again:?}");
    assert_eq!(again.pending, 0);
    assert_eq!(s.total("page"), 9);
}

#[test]
fn many_reports_are_sent_in_several_requests() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    let slices = tally_proto::wire::MAX_REPORTS_PER_REQUEST + 3;
    for _ in 0..slices {
        client.record_usage("scan", 1).unwrap();
        f.clock.advance(SLICE_SECONDS);
    }
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.sent, slices);
    assert_eq!(outcome.acknowledged, slices);
    assert_eq!(s.total("scan"), slices as u64);
    let b = s.behaviour();
    let sizes: Vec<usize> = b
        .report_requests
        .iter()
        .map(|r| r.request.reports.len())
        .collect();
    assert_eq!(sizes, [tally_proto::wire::MAX_REPORTS_PER_REQUEST, 3]);
    // The recording took more than a day: the first session had expired.
    assert_eq!(b.authorize_requests.len(), 2);
    assert_eq!(b.expired_refused, 0, "the SDK knows when its session ends");
}

#[test]
fn the_background_thread_flushes_at_start_every_interval_and_on_stop() {
    let f = Fixture::new();
    let s = server(&f);
    let client = Arc::new(f.client(&[&s.url]));
    client.authorize().unwrap();
    client.record_usage("scan", 1).unwrap();
    let background = client
        .spawn_background_polling(Duration::from_secs(600), Duration::from_millis(5))
        .unwrap();
    assert!(eventually(|| s.total("scan") == 1), "flushed at start");
    client.record_usage("scan", 2).unwrap();
    // Ten minutes later by the client's clock.
    f.clock.advance(600);
    assert!(
        eventually(|| s.total("scan") == 3),
        "flushed after the interval"
    );
    client.record_usage("scan", 4).unwrap();
    drop(background);
    assert_eq!(s.total("scan"), 7, "flushed on stop");
    assert_eq!(client.status().unwrap().pending_reports, 0);
    assert_eq!(
        s.behaviour().authorize_requests.len(),
        1,
        "nothing to renew yet"
    );
}

#[test]
fn the_background_thread_renews_the_grant_when_due() {
    let f = Fixture::new();
    let s = server(&f);
    let client = Arc::new(f.client(&[&s.url]));
    assert_eq!(client.authorize().unwrap().grant.renew_at, T0 + DAY);
    let background = client
        .spawn_background_polling(Duration::from_secs(3600), Duration::from_millis(5))
        .unwrap();
    f.clock.set(T0 + DAY);
    assert!(eventually(|| {
        client
            .status()
            .unwrap()
            .grant
            .is_some_and(|g| g.issued_at == T0 + DAY)
    }));
    drop(background);
    assert_eq!(s.behaviour().authorize_requests.len(), 2);
    let auth = client.check().unwrap();
    assert_eq!(auth.grant.valid_until, T0 + 8 * DAY);
    assert_eq!(auth.grant.renew_at, T0 + 2 * DAY);
}
