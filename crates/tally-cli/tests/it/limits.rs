//! Limits a license sets that the device cannot walk around, through the real SDK against the
//! real server: local validity by license type, the licensor's offline cap, usage only from
//! devices holding a place, per-usage exhaustion, reports judged one by one, background renewal
//! and the grace after an item's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_core::ManualClock;
use tally_proto::ErrorCode;
use tally_proto::admin::{AlertView, UsageRow};
use tally_proto::license::LicenseType;
use tally_sdk::{Client, Config};

use crate::common::*;
use crate::e2e::{client, config, refusal};

fn server_with(items: Vec<tally_proto::license::LicenseItem>) -> TestServer {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", items));
    s
}

/// The same device (state directory) seeing only an address where no server listens.
fn cut_off(c: &Config) -> Config {
    let mut down = c.clone();
    down.servers = vec!["http://127.0.0.1:9".into()];
    down
}

fn total(s: &TestServer) -> u64 {
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage?from=2026-05-01&to=2026-08-01", None);
    rows.iter().map(|r| r.count).sum()
}

/// Waits (real time, bounded) until `done` holds; the background thread polls every 10 ms.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_concurrent_seat_is_used_offline_only_until_its_end_while_another_device_takes_it() {
    let s = server_with(vec![typed("L-1-1", LicenseType::ConcurrentDevice, 1, 0)]);
    let a_config = config(&s, "a");
    let a = client(&s, a_config.clone());
    let grant = a.authorize().unwrap().grant;
    assert_eq!(
        grant.seat_until,
        Some(T0 + 360),
        "to the end of the next slice"
    );
    assert_eq!(grant.valid_until, T0 + 420, "the seat's end and one minute");
    assert_eq!(grant.renew_at, T0 + 180);
    assert_eq!(
        refusal(client(&s, config(&s, "b")).authorize()),
        ErrorCode::SeatsExhausted
    );

    // A loses the server. Within its seat it keeps working from the held grant.
    let a_offline = client(&s, cut_off(&a_config));
    s.clock.advance(300);
    assert!(a_offline.authorize().unwrap().cached);
    // The seat lapses on the server at T0 + 360: B takes it.
    s.clock.set(T0 + 361);
    client(&s, config(&s, "b")).authorize().unwrap();
    a_offline.check().unwrap(); // the minute of tolerance
    s.clock.set(T0 + 420);
    assert_eq!(refusal(a_offline.authorize()), ErrorCode::SeatLapsed);
    assert_eq!(refusal(a_offline.check()), ErrorCode::SeatLapsed);
    // Back online, A is refused while B holds the only seat, and forgets its grant.
    assert_eq!(refusal(a.authorize()), ErrorCode::SeatsExhausted);
    assert_eq!(refusal(a_offline.check()), ErrorCode::SeatsExhausted);
}

#[test]
fn the_background_thread_renews_a_seat_before_it_lapses() {
    let s = server_with(vec![typed("L-1-1", LicenseType::ConcurrentDevice, 1, 0)]);
    let a = Arc::new(client(&s, config(&s, "a")));
    a.authorize().unwrap();
    let _background = a
        .spawn_background_polling(Duration::from_secs(180), Duration::from_millis(10))
        .unwrap();
    let seat = |c: &Client| c.status().unwrap().grant.and_then(|g| g.seat_until);
    for (at, seat_end) in [
        (T0 + 200, T0 + 540),
        (T0 + 400, T0 + 720),
        (T0 + 600, T0 + 900),
    ] {
        s.clock.set(at);
        eventually("the seat renewed", || seat(&a) == Some(seat_end));
        assert_eq!(
            refusal(client(&s, config(&s, "b")).authorize()),
            ErrorCode::SeatsExhausted
        );
        a.check().unwrap();
    }
}

#[test]
fn a_long_lived_grant_is_renewed_in_the_background_within_a_day() {
    let s = server_with(vec![per_device("L-1-1", "scanner", 5, 10)]);
    let device = Arc::new(client(&s, config(&s, "renewing")));
    let first = device.authorize().unwrap().grant;
    assert_eq!(first.valid_until, T0 + 7 * DAY);
    assert_eq!(first.renew_at, T0 + DAY);
    let _background = device
        .spawn_background_polling(Duration::from_secs(180), Duration::from_millis(10))
        .unwrap();
    s.clock.set(T0 + DAY + 5);
    eventually("the grant renewed", || {
        device.status().unwrap().grant.map(|g| g.valid_until) == Some(T0 + 8 * DAY + 5)
    });
}

#[test]
fn a_per_active_device_grant_ends_with_the_utc_day() {
    let s = server_with(vec![typed("L-1-1", LicenseType::PerActiveDevice, 1, 0)]);
    let c = config(&s, "day");
    s.clock.set(T0 + 3600);
    let grant = client(&s, c.clone()).authorize().unwrap().grant;
    assert_eq!(grant.valid_until, T0 + DAY + 60);
    assert_eq!(grant.renew_at, T0 + DAY);
    let offline = client(&s, cut_off(&c));
    s.clock.set(T0 + DAY + 59);
    offline.check().unwrap();
    s.clock.set(T0 + DAY + 60);
    assert_eq!(refusal(offline.authorize()), ErrorCode::GrantExpired);
}

#[test]
fn the_licensor_caps_the_offline_days_and_a_client_can_only_ask_for_less() {
    let mut capped = per_device("L-1-1", "scanner", 5, 10);
    capped.max_offline_days = Some(30);
    let s = server_with(vec![capped]);
    let valid = |s: &TestServer, name: &str, ask: Option<u32>| {
        let mut c = config(s, name);
        c.buffer_days = ask;
        client(s, c).authorize().unwrap().grant.valid_until
    };
    assert_eq!(valid(&s, "greedy", Some(3650)), T0 + 30 * DAY);
    assert_eq!(valid(&s, "default", None), T0 + 30 * DAY);
    assert_eq!(valid(&s, "modest", Some(2)), T0 + 2 * DAY);

    // Without a stated cap the item allows 7 days; the server's setting lowers any cap.
    let s = server_with(vec![per_device("L-1-1", "scanner", 5, 10)]);
    assert_eq!(valid(&s, "greedy", Some(3650)), T0 + 7 * DAY);
    let mut capped = per_device("L-1-1", "scanner", 5, 10);
    capped.max_offline_days = Some(30);
    let strict = TestServer::start_with(|settings| settings.buffer_days = Some(3));
    strict.import(&strict.activated("L-1", "acme", vec![capped]));
    assert_eq!(valid(&strict, "greedy", Some(3650)), T0 + 3 * DAY);
}

#[test]
fn a_device_whose_place_lapsed_cannot_charge_usage_until_it_holds_one_again() {
    let s = server_with(vec![typed("L-1-1", LicenseType::ConcurrentDevice, 1, 0)]);
    let a = client(&s, config(&s, "a"));
    a.authorize().unwrap();
    a.record_usage("scan", 1_000_000).unwrap();
    // A's seat lapses and B takes it: A's report is refused and kept.
    s.clock.set(T0 + 400);
    let b = client(&s, config(&s, "b"));
    b.authorize().unwrap();
    assert_eq!(a.flush().unwrap_err().code, ErrorCode::SeatsExhausted);
    assert_eq!(a.status().unwrap().pending_reports, 1);
    assert_eq!(total(&s), 0);
    // Once B's seat lapses A gets the seat back and its usage counts, once.
    s.clock.set(T0 + 1000);
    let flushed = a.flush().unwrap();
    assert_eq!((flushed.acknowledged, flushed.pending), (1, 0));
    assert_eq!(total(&s), 1_000_000);
}

#[test]
fn a_used_up_per_usage_item_stops_the_device_until_a_new_authorization_succeeds() {
    let s = server_with(vec![typed("L-1-1", LicenseType::PerUsage, 100, 5)]);
    let c = config(&s, "metered");
    let device = client(&s, c.clone());
    device.authorize().unwrap();
    device.record_usage("scan", 104).unwrap();
    assert!(!device.flush().unwrap().usage_exhausted);
    device.check().unwrap();
    device.record_usage("scan", 1).unwrap();
    let flushed = device.flush().unwrap();
    assert!(flushed.usage_exhausted, "{flushed:?}");
    assert_eq!(refusal(device.check()), ErrorCode::UsageQuotaExceeded);
    assert_eq!(
        refusal(client(&s, cut_off(&c)).authorize()),
        ErrorCode::UsageQuotaExceeded,
        "no held grant to fall back on"
    );
    assert_eq!(refusal(device.authorize()), ErrorCode::UsageQuotaExceeded);
    // Usage recorded before the device knew still counts.
    device.record_usage("scan", 3).unwrap();
    assert_eq!(device.flush().unwrap().acknowledged, 1);
    assert_eq!(total(&s), 108);
    // A renewal (another license on the code) lets it authorize again.
    s.import(&s.activated(
        "L-2",
        "acme",
        vec![typed("L-2-1", LicenseType::PerUsage, 1000, 5)],
    ));
    assert_eq!(device.authorize().unwrap().grant.items[0].item_id, "L-2-1");
    device.check().unwrap();
}

#[test]
fn a_report_stamped_in_the_future_is_counted_now_and_blocks_nothing() {
    let s = server_with(vec![per_device("L-1-1", "scanner", 5, 10)]);
    // The device clock runs two days ahead of the server's.
    let device_clock = ManualClock::new(T0 + 2 * DAY);
    let device = Client::with_clock(config(&s, "ahead"), Arc::new(device_clock.clone())).unwrap();
    device.authorize().unwrap();
    device.record_usage("scan", 5).unwrap();
    // The clock is corrected; honest usage follows.
    device_clock.set(T0 + 200);
    device.record_usage("scan", 2).unwrap();
    device_clock.set(T0 + 400);
    device.record_usage("scan", 1).unwrap();
    s.clock.set(T0 + 400);
    let flushed = device.flush().unwrap();
    assert_eq!(
        (flushed.acknowledged, flushed.refused, flushed.pending),
        (3, 0, 0)
    );
    let rows: Vec<UsageRow> = s.admin_ok("GET", "/stats/usage?from=2026-06-01&to=2026-06-03", None);
    let days: Vec<(&str, u64)> = rows.iter().map(|r| (r.day.as_str(), r.count)).collect();
    assert_eq!(days, [("2026-06-01", 8)], "counted today, not in two days");
    // A month later nothing was lost or counted twice.
    device_clock.set(T0 + 31 * DAY);
    s.clock.set(T0 + 31 * DAY);
    let later = device.flush().unwrap();
    assert_eq!((later.sent, later.expired, later.pending), (0, 0, 0));
    assert_eq!(total(&s), 8);
}

#[test]
fn an_ended_item_works_through_its_grace_days_with_a_status_then_refuses() {
    let mut item = per_device("L-1-1", "scanner", 5, 10);
    item.end = T0 + 10 * DAY;
    let s = server_with(vec![item]);
    let c = config(&s, "late");
    let device = client(&s, c.clone());
    let end = T0 + 10 * DAY;

    s.clock.set(end - 1);
    let before = device.authorize().unwrap();
    assert_eq!(
        (before.warnings.clone(), before.grace_until),
        (vec![], None)
    );
    assert_eq!(before.grant.items[0].grace_end, end + 7 * DAY);

    s.clock.set(end + 6 * DAY);
    let grace = device.authorize().unwrap();
    assert_eq!(grace.warnings, [ErrorCode::LicenseInGrace]);
    assert_eq!(grace.grace_until, Some(end + 7 * DAY));
    assert_eq!(
        grace.grant.valid_until,
        end + 7 * DAY,
        "never beyond the grace"
    );
    let offline = client(&s, cut_off(&c)).authorize().unwrap();
    assert_eq!(
        offline.warnings,
        [ErrorCode::CachedGrantUsed, ErrorCode::LicenseInGrace]
    );
    // The expiry alert says the item ended and works in its grace.
    let v: serde_json::Value = s.admin_ok(
        "POST",
        "/alerts/evaluate",
        Some(("application/json", Vec::new())),
    );
    assert!(v["alert_id"].as_i64().is_some());
    let history: Vec<AlertView> = s.admin_ok("GET", "/alerts", None);
    assert!(
        history[0]
            .body
            .contains("has ended: devices keep working during its grace days"),
        "{}",
        history[0].body
    );

    s.clock.set(end + 7 * DAY + 1);
    assert_eq!(refusal(device.authorize()), ErrorCode::LicenseExpired);
    assert_eq!(
        refusal(client(&s, cut_off(&c)).authorize()),
        ErrorCode::LicenseExpired,
        "the refusal ended the held grant"
    );
}

#[test]
fn a_vendor_sets_another_grace_length_per_item() {
    let mut item = per_device("L-1-1", "scanner", 5, 10);
    item.end = T0 + DAY;
    item.grace_days = Some(2);
    let s = server_with(vec![item]);
    s.clock.set(T0 + 2 * DAY);
    let auth = client(&s, config(&s, "a")).authorize().unwrap();
    assert_eq!(auth.grace_until, Some(T0 + 3 * DAY));
    s.clock.set(T0 + 3 * DAY);
    assert_eq!(
        refusal(client(&s, config(&s, "b")).authorize()),
        ErrorCode::LicenseExpired
    );
}

#[test]
fn the_background_thread_brings_a_refused_device_back_once_the_license_is_renewed() {
    let s = server_with(vec![typed("L-1-1", LicenseType::PerUsage, 10, 0)]);
    let device = Arc::new(client(&s, config(&s, "metered")));
    device.authorize().unwrap();
    device.record_usage("scan", 10).unwrap();
    assert!(device.flush().unwrap().usage_exhausted);
    let _background = device
        .spawn_background_polling(Duration::from_secs(180), Duration::from_millis(10))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(refusal(device.check()), ErrorCode::UsageQuotaExceeded);
    s.import(&s.activated(
        "L-2",
        "acme",
        vec![typed("L-2-1", LicenseType::PerUsage, 1000, 5)],
    ));
    s.clock.advance(15 * 60);
    eventually("authorized again by the background thread", || {
        device.check().is_ok()
    });
}
