//! What the server's quotas do to a device: a sealed refusal of the license takes the held grant
//! away (a plain one, which anyone on the path could write, does not), a used-up per-usage item
//! stops the product, refused reports are dropped, and a concurrent seat lasts only while it is
//! renewed.

use std::sync::Arc;
use std::time::Duration;

use tally_proto::license::LicenseType;
use tally_proto::slice::SLICE_SECONDS;
use tally_sdk::{Authorization, ErrorCode, SdkError};

use crate::fixtures::*;
use crate::online::server;

fn code(result: Result<Authorization, SdkError>) -> ErrorCode {
    match result {
        Ok(a) => panic!("expected a refusal, got {a:?}"),
        Err(e) => e.code,
    }
}

#[test]
fn a_sealed_refusal_of_the_license_forgets_the_held_grant() {
    for refusal in [
        ErrorCode::DeviceQuotaExceeded,
        ErrorCode::SeatsExhausted,
        ErrorCode::LicenseExpired,
        ErrorCode::HandshakeDisabled,
    ] {
        let f = Fixture::new();
        let s = server(&f);
        let client = f.client(&[&s.url]);
        client.authorize().unwrap();
        s.behaviour().refuse_authorize = Some(refusal);
        assert_eq!(code(client.authorize()), refusal);
        assert_eq!(client.status().unwrap().grant, None, "{refusal:?}");
        // Neither check() nor the offline path falls back to the grant: they explain why.
        let e = client.check().unwrap_err();
        assert_eq!(e.code, refusal);
        assert!(e.message.contains("refused this device"), "{e}");
        assert_eq!(code(f.offline_client().authorize()), refusal);
        assert_eq!(code(f.offline_client().check()), refusal);

        // Once the server admits the device again, everything works again.
        s.behaviour().refuse_authorize = None;
        client.authorize().unwrap();
        client.check().unwrap();
        assert!(f.offline_client().authorize().unwrap().cached);
    }
}

#[test]
fn a_sealed_refusal_of_the_request_only_keeps_the_held_grant() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    s.behaviour().refuse_authorize = Some(ErrorCode::Internal);
    assert_eq!(code(client.authorize()), ErrorCode::Internal);
    assert_eq!(client.check().unwrap().grant, auth.grant);
}

#[test]
fn a_plain_refusal_does_not_take_the_held_grant() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    // Anyone on the path can answer this: it is returned, but proves nothing.
    s.behaviour().plain_error = Some((403, ErrorCode::DeviceQuotaExceeded));
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::DeviceQuotaExceeded);
    assert_eq!(e.server_code, Some(130));
    assert_eq!(client.check().unwrap().grant, auth.grant);
    assert_eq!(
        client.status().unwrap().grant.unwrap().valid_until,
        T0 + 7 * DAY
    );
    let offline = f.offline_client().authorize().unwrap();
    assert!(offline.cached);
    assert_eq!(offline.grant, auth.grant);
    // Nor does a plain refusal of a report.
    client.record_usage("scan", 1).unwrap();
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::DeviceQuotaExceeded
    );
    client.check().unwrap();
    assert_eq!(client.status().unwrap().pending_reports, 1);
}

#[test]
fn a_used_up_usage_item_stops_the_product_until_authorized_again() {
    let f = Fixture::with_type(LicenseType::PerUsage);
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("scan", 10).unwrap();
    // Another item used up says nothing about this device's grant.
    s.behaviour().exhausted = vec!["L-9-1".into()];
    let outcome = client.flush().unwrap();
    assert!(!outcome.usage_exhausted);
    client.check().unwrap();

    client.record_usage("scan", 10).unwrap();
    s.behaviour().exhausted = vec!["L-1-1".into()];
    let outcome = client.flush().unwrap();
    assert!(outcome.usage_exhausted, "{outcome:?}");
    assert_eq!(outcome.acknowledged, 1, "the usage itself was counted");
    assert_eq!(s.total("scan"), 20);
    assert_eq!(code(client.check()), ErrorCode::UsageQuotaExceeded);
    assert_eq!(client.status().unwrap().grant, None);
    assert_eq!(
        code(f.offline_client().authorize()),
        ErrorCode::UsageQuotaExceeded
    );

    // Usage recorded meanwhile is still delivered.
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);

    // A new authorization (the licensor raised the quota) lets it run again.
    s.behaviour().exhausted.clear();
    client.authorize().unwrap();
    client.check().unwrap();
}

#[test]
fn refused_reports_are_dropped_and_the_others_acknowledged() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    // A counter the server cannot hold: the report is malformed for good.
    client.record_usage("scan", u64::MAX).unwrap();
    f.clock.advance(SLICE_SECONDS);
    client.record_usage("page", 3).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.sent, 2, "{outcome:?}");
    assert_eq!(outcome.refused, 1);
    assert_eq!(outcome.acknowledged, 1);
    assert_eq!(outcome.pending, 0);
    assert_eq!(s.total("page"), 3);
    assert_eq!(s.total("scan"), 0);
    assert_eq!(client.status().unwrap().pending_reports, 0);
    // It is not sent again.
    assert_eq!(client.flush().unwrap().sent, 0);
    assert_eq!(s.behaviour().report_requests.len(), 1);
    client.check().unwrap();
}

#[test]
fn a_concurrent_seat_lapses_a_minute_after_its_end() {
    let f = Fixture::with_type(LicenseType::ConcurrentDevice);
    let s = server(&f);
    let client = f.client(&[&s.url]);
    // Taken on a slice boundary: held to the end of the next slice.
    let auth = client.authorize().unwrap();
    let seat_until = T0 + 2 * SLICE_SECONDS;
    assert_eq!(auth.grant.seat_until, Some(seat_until));
    assert_eq!(auth.grant.valid_until, seat_until + 60);
    assert_eq!(auth.grant.renew_at, T0 + SLICE_SECONDS);
    let summary = client.status().unwrap().grant.unwrap();
    assert_eq!(summary.seat_until, Some(seat_until));

    f.clock.set(seat_until + 59);
    client.check().unwrap();
    f.clock.set(seat_until + 60);
    assert_eq!(code(client.check()), ErrorCode::SeatLapsed);
    // Without a server neither: the seat is not the device's any more.
    s.behaviour().down = true;
    let e = client.authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::SeatLapsed);
    assert_eq!(code(f.offline_client().authorize()), ErrorCode::SeatLapsed);

    // A server that answers gives a new seat.
    s.behaviour().down = false;
    let renewed = client.authorize().unwrap();
    assert_eq!(renewed.grant.seat_until, Some(T0 + 4 * SLICE_SECONDS));
    client.check().unwrap();
}

#[test]
fn the_background_thread_keeps_a_seat_renewed() {
    let f = Fixture::with_type(LicenseType::ConcurrentDevice);
    let s = server(&f);
    let client = Arc::new(f.client(&[&s.url]));
    client.authorize().unwrap();
    let background = client
        .spawn_background_polling(Duration::from_secs(3600), Duration::from_millis(5))
        .unwrap();
    f.clock.set(T0 + SLICE_SECONDS); // the grant's renew_at
    assert!(eventually(|| {
        client
            .status()
            .unwrap()
            .grant
            .is_some_and(|g| g.seat_until == Some(T0 + 3 * SLICE_SECONDS))
    }));
    // Past the first seat's lapse, the renewed seat holds.
    f.clock.set(T0 + 2 * SLICE_SECONDS + 60);
    client.check().unwrap();
    drop(background);
    // With no renewal the seat lapses in turn.
    let held = client.status().unwrap().grant.unwrap();
    f.clock.set(held.valid_until);
    assert_eq!(code(client.check()), ErrorCode::SeatLapsed);
}
