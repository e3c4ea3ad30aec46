//! Against the in-test server: the wire contract end to end (hello, sealed authorize and
//! report, stale-stamp retry, standby servers, refusals and untrusted servers).

use tally_core::{Clock, ManualClock};
use tally_proto::slice::SLICE_SECONDS;
use tally_sdk::ErrorCode;

use crate::fake_server::FakeServer;
use crate::fixtures::*;

fn server(f: &Fixture) -> FakeServer {
    FakeServer::start(
        f.server.clone(),
        vec![f.certificate.clone()],
        f.clock.clone(),
    )
}

#[test]
fn authorize_then_report_usage_online() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    assert!(!auth.cached);
    assert_eq!(auth.warning, None);
    assert_eq!(auth.grant.device_uuid, client.device_uuid());
    assert_eq!(auth.grant.valid_until, T0 + 7 * DAY);
    {
        let b = s.behaviour();
        let req = &b.authorize_requests[0];
        assert_eq!(req.product, "scanner");
        assert_eq!(req.organization, "acme");
        assert_eq!(req.buffer_days, Some(7));
        assert_eq!(req.stamp.sent_at, T0);
        assert_eq!(req.stamp.request_id.len(), 32);
    }

    client.record_usage("scan", 2).unwrap();
    client.record_usage("scan.symbology.qr", 1).unwrap();
    f.clock.advance(SLICE_SECONDS);
    client.record_usage("scan", 5).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.sent, 2, "{outcome:?}");
    assert_eq!(outcome.acknowledged, 2);
    assert_eq!(outcome.duplicates, 0);
    assert_eq!(outcome.pending, 0);
    assert_eq!(s.total("scan"), 7);
    assert_eq!(s.total("scan.symbology.qr"), 1);
    {
        let b = s.behaviour();
        let req = &b.report_requests[0];
        assert_eq!(req.handshake_code, "acme-default", "the grant's code");
        assert_eq!(req.device_uuid, client.device_uuid());
    }
    assert_eq!(client.status().unwrap().pending_reports, 0);
    assert_eq!(client.flush().unwrap().sent, 0);
    assert_eq!(s.behaviour().report_requests.len(), 1);

    // The grant from the server is cached: later, with no server, it is used offline.
    let offline = f.offline_client();
    f.clock.advance(DAY);
    let cached = offline.authorize().unwrap();
    assert!(cached.cached);
    assert_eq!(cached.grant, auth.grant);
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
fn requests_carry_the_server_clock_and_a_stale_stamp_is_retried_once() {
    let f = Fixture::new();
    // The server's clock is an hour ahead of the device's.
    let server_clock = ManualClock::new(T0 + 3600);
    let s = FakeServer::start(f.server.clone(), vec![f.certificate.clone()], server_clock);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    assert_eq!(s.behaviour().authorize_requests[0].stamp.sent_at, T0 + 3600);

    // Between hello and authorize the server clock jumps: the first envelope is stale.
    s.behaviour().jump_clock_once = 1000;
    client.authorize().unwrap();
    let b = s.behaviour();
    assert_eq!(
        b.authorize_requests.len(),
        2,
        "the stale request is not handled"
    );
    let retried = &b.authorize_requests[1];
    assert_eq!(retried.stamp.sent_at, s.clock.now());
    assert_ne!(
        retried.stamp.request_id,
        b.authorize_requests[0].stamp.request_id
    );
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
}

#[test]
fn a_server_without_a_vendor_activation_is_not_trusted() {
    let f = Fixture::new();
    let other_vendor = tally_crypto::SigningKey::generate().unwrap();
    let forged = certificate(
        &other_vendor,
        &f.server.identity,
        "L-1",
        vec![item("L-1-1", T0 + 365 * DAY)],
    );
    let s = FakeServer::start(f.server.clone(), vec![forged], f.clock.clone());
    let client = f.client(&[&s.url]);
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerNotTrusted);
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
        vec![item("L-1-1", T0 + 365 * DAY)],
    );
    let s = FakeServer::start(f.server.clone(), vec![theirs], f.clock.clone());
    assert_eq!(
        f.client(&[&s.url]).authorize().unwrap_err().code,
        ErrorCode::ServerNotTrusted
    );

    // Usage is not given to it either; it is kept.
    f.authorize_directly(&client);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::ServerNotTrusted
    );
    assert_eq!(client.status().unwrap().pending_reports, 1);
}

#[test]
fn a_report_whose_answer_was_lost_is_counted_once() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("page", 9).unwrap();
    s.behaviour().lose_report_answer_once = true;
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    assert_eq!(s.total("page"), 9, "the server counted it");
    assert_eq!(client.status().unwrap().pending_reports, 1);

    let again = client.flush().unwrap();
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
    let b = s.behaviour();
    let sizes: Vec<usize> = b.report_requests.iter().map(|r| r.reports.len()).collect();
    assert_eq!(sizes, [tally_proto::wire::MAX_REPORTS_PER_REQUEST, 3]);
}

#[test]
fn the_background_reporter_flushes_at_start_and_on_stop() {
    let f = Fixture::new();
    let s = server(&f);
    let client = std::sync::Arc::new(f.client(&[&s.url]));
    client.authorize().unwrap();
    client.record_usage("scan", 1).unwrap();
    let reporter = client
        .spawn_reporter(std::time::Duration::from_secs(3600))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.total("scan") < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(s.total("scan"), 1, "flushed at start");
    client.record_usage("scan", 2).unwrap();
    drop(reporter);
    assert_eq!(s.total("scan"), 3, "flushed on stop");
    assert_eq!(client.status().unwrap().pending_reports, 0);
}
