//! The report session an authorization opens: kept on disk across restarts, replaced when the
//! server no longer takes it, never reusing a message number, shared safely by threads and
//! processes on one state directory.

use std::collections::HashSet;
use std::sync::Arc;

use tally_core::ManualClock;
use tally_sdk::{Client, Config, ErrorCode};

use crate::fixtures::*;
use crate::online::server;

#[test]
fn the_session_survives_a_new_client_on_the_same_state_dir() {
    let f = Fixture::new();
    let s = server(&f);
    f.client(&[&s.url]).authorize().unwrap();
    assert!(f.state_dir().join("session.json").exists());

    // A new process reports in the session it finds on disk, without authorizing again.
    for expected_seq in 1..=3u64 {
        let client = f.client(&[&s.url]);
        client.record_usage("scan", 1).unwrap();
        assert_eq!(client.flush().unwrap().acknowledged, 1);
        let b = s.behaviour();
        assert_eq!(b.authorize_requests.len(), 1);
        assert_eq!(b.report_requests.last().unwrap().seq, expected_seq);
    }
    let b = s.behaviour();
    let tickets: HashSet<_> = b.report_requests.iter().map(|r| r.ticket_id).collect();
    assert_eq!(tickets.len(), 1, "one session");
    assert_eq!(b.replays_refused, 0);
    drop(b);
    assert_eq!(s.total("scan"), 3);
}

#[test]
fn reports_without_a_session_authorize_first() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    // Never authorized: the flush authorizes, then reports in the new session.
    client.record_usage("scan", 2).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.acknowledged, 1);
    assert_eq!(s.behaviour().authorize_requests.len(), 1);
    assert_eq!(s.total("scan"), 2);
    // The authorization is kept like any other.
    client.check().unwrap();

    // A grant accepted without a session (from a server that opened none) reports the same way.
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    f.authorize_directly(&client);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
    assert_eq!(s.behaviour().authorize_requests.len(), 1);
}

#[test]
fn an_expired_session_is_replaced_by_a_new_authorization() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();

    // The server no longer takes the ticket: the SDK authorizes and sends again.
    s.expire_sessions();
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
    {
        let b = s.behaviour();
        assert_eq!(b.expired_refused, 1);
        assert_eq!(b.authorize_requests.len(), 2);
    }

    // Near its end by the SDK's own reckoning, a session is not even tried.
    f.clock.advance(tally_proto::wire::SESSION_SECONDS - 30);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
    let b = s.behaviour();
    assert_eq!(b.expired_refused, 1);
    assert_eq!(b.authorize_requests.len(), 3);
    drop(b);
    assert_eq!(s.total("scan"), 2);
}

#[test]
fn a_device_without_a_live_place_authorizes_again_before_reporting() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    s.drop_places();
    client.record_usage("scan", 1).unwrap();
    assert_eq!(client.flush().unwrap().acknowledged, 1);
    assert_eq!(s.behaviour().no_live_place_refused, 1);
    assert_eq!(s.behaviour().authorize_requests.len(), 2);
    assert_eq!(s.total("scan"), 1);

    // When the server will not admit it again, the refusal is returned and the usage kept.
    s.drop_places();
    s.behaviour().refuse_authorize = Some(ErrorCode::DeviceQuotaExceeded);
    client.record_usage("scan", 1).unwrap();
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::DeviceQuotaExceeded
    );
    assert_eq!(client.status().unwrap().pending_reports, 1);
    assert_eq!(s.total("scan"), 1);
}

#[test]
fn a_restored_backup_reusing_message_numbers_loses_nothing_and_counts_nothing_twice() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    client.record_usage("scan", 1).unwrap();
    client.flush().unwrap();
    let session = f.state_dir().join("session.json");
    let backup = std::fs::read(&session).unwrap();
    client.record_usage("scan", 2).unwrap();
    client.flush().unwrap();

    // The state directory is restored: message number 2 is used once more.
    std::fs::write(&session, backup).unwrap();
    client.record_usage("scan", 4).unwrap();
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.acknowledged, 1, "{outcome:?}");
    let b = s.behaviour();
    assert_eq!(b.replays_refused, 1, "the server refused the number");
    assert_eq!(b.authorize_requests.len(), 2, "a new session");
    drop(b);
    assert_eq!(s.total("scan"), 7);
}

#[test]
fn clients_sharing_a_state_dir_never_reuse_a_message_number() {
    let f = Fixture::new();
    let s = server(&f);
    f.client(&[&s.url]).authorize().unwrap();
    // Each client has its own handle on the directory, as separate processes do.
    let clients: Vec<_> = (0..4).map(|_| f.client(&[&s.url])).collect();
    std::thread::scope(|scope| {
        for c in &clients {
            scope.spawn(move || {
                for _ in 0..15 {
                    c.record_usage("scan", 1).unwrap();
                    c.flush().unwrap();
                }
            });
        }
    });
    clients[0].flush().unwrap();
    assert_eq!(s.total("scan"), 60);
    let b = s.behaviour();
    assert_eq!(b.replays_refused, 0);
    assert_eq!(b.authorize_requests.len(), 1, "one session for all");
    let numbers: HashSet<u64> = b.report_requests.iter().map(|r| r.seq).collect();
    assert_eq!(numbers.len(), b.report_requests.len());
    drop(b);
    assert_eq!(clients[0].status().unwrap().pending_reports, 0);
}

/// Environment of [`child_process_reports`]: the state directory, the server URL, the vendor key
/// and the number of rounds.
const CHILD_ENV: [&str; 4] = [
    "TALLY_IT_CHILD_STATE",
    "TALLY_IT_CHILD_SERVER",
    "TALLY_IT_CHILD_VENDOR",
    "TALLY_IT_CHILD_ROUNDS",
];

/// Not a test of its own: the body of the child processes of
/// `processes_sharing_a_state_dir_count_every_use_once`, which run this test binary with only
/// this test selected. Without its environment it does nothing.
#[test]
fn child_process_reports() {
    let Ok(state) = std::env::var(CHILD_ENV[0]) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let mut config = Config::new(
        vec![var(CHILD_ENV[1])],
        &var(CHILD_ENV[2]),
        state,
        "scanner",
    );
    config.organization = "acme".into();
    let client = Client::with_clock(config, Arc::new(ManualClock::new(T0))).unwrap();
    for _ in 0..var(CHILD_ENV[3]).parse::<u32>().unwrap() {
        client.record_usage("scan", 1).unwrap();
        client.flush().unwrap();
    }
}

#[test]
fn processes_sharing_a_state_dir_count_every_use_once() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.authorize().unwrap();
    let rounds = 15;
    let vendor = f.vendor.verifying_key().to_base64();
    let state = f.state_dir();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "session::child_process_reports",
                    "--exact",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(CHILD_ENV[0], &state)
                .env(CHILD_ENV[1], &s.url)
                .env(CHILD_ENV[2], &vendor)
                .env(CHILD_ENV[3], rounds.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile this process records and reports too.
    for _ in 0..rounds {
        client.record_usage("scan", 1).unwrap();
        client.flush().unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child process failed");
    }
    client.flush().unwrap();
    assert_eq!(s.total("scan"), 3 * rounds);
    let b = s.behaviour();
    assert_eq!(b.replays_refused, 0, "a message number was used twice");
    assert_eq!(
        b.authorize_requests.len(),
        1,
        "the children used the session"
    );
    drop(b);
    assert_eq!(client.status().unwrap().pending_reports, 0);
}

/// The flush authorized (no session was held), then the answer to the report was lost: no
/// server answered, which `flush` documents as `ServerUnreachable`.
#[test]

fn a_lost_answer_in_a_new_session_is_reported_as_unreachable() {
    let f = Fixture::new();
    let s = server(&f);
    let client = f.client(&[&s.url]);
    client.record_usage("scan", 1).unwrap();
    s.behaviour().lose_report_answer_once = true;
    let e = client.flush().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerUnreachable, "{e}");
    assert!(e.message.contains("1 usage reports kept"), "{e}");
    assert_eq!(client.status().unwrap().pending_reports, 1);
    assert_eq!(client.flush().unwrap().duplicates, 1);
    assert_eq!(s.total("scan"), 1);
}
