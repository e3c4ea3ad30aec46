//! Several server instances on one PostgreSQL database, all active. As an operator runs them
//! (`tally serve` processes): devices reach either instance and share one quota, and when one
//! instance is killed (SIGKILL) in the middle of their reports, the devices continue on the other
//! through their server list and every report counts exactly once. In process: a report session
//! continues on another instance, which refuses the messages the first accepted, and instances
//! evaluating alerts at once send each alert once.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tally_proto::ErrorCode;
use tally_proto::admin::{AlertView, UsageRow};
use tally_proto::wire::{PATH_SESSION_REPORT, Reply};
use tally_sdk::{Client, Config};

use crate::cli::ok;
use crate::cluster::activated_for;
use crate::common::{T0, TestServer};
use crate::postgres::Schema;
use crate::processes::{TwoInstances, activate_for_two, free_port, requested_uuid, serve};
use crate::protocol::{
    open_session, open_session_reply, plain_error, post_raw, session_body, session_report_request,
};

const TOKEN: &str = "cluster-admin-token-0123456789";

/// A device of `product` at `state` whose configuration lists `servers` in that order.
fn device(servers: &[&str], public: &str, state: &Path, product: &str) -> Client {
    let mut config = Config::new(
        servers.iter().map(|s| s.to_string()).collect(),
        public,
        state,
        product,
    );
    config.organization = "acme".into();
    Client::new(config).unwrap()
}

/// Scans counted by the server at `url`, in all.
fn scans_counted(url: &str) -> u64 {
    let mut resp = ureq::get(&format!("{url}/api/admin/stats/usage"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let rows: Vec<UsageRow> =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    rows.iter()
        .filter(|r| r.feature == "scan")
        .map(|r| r.count)
        .sum()
}

#[test]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
fn two_instances_on_one_database_share_quotas_and_survive_a_kill() {
    let schema = Schema::create("cluster");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let TwoInstances {
        public, labels_b, ..
    } = activate_for_two(
        d,
        "L-SHARED",
        &[
            "product=scanner,type=per-device,quantity=5,grace=0,start=2020-01-01,end=2099-01-01",
            "product=reader,type=per-device,quantity=100,start=2020-01-01,end=2099-01-01",
        ],
    );
    assert_ne!(
        requested_uuid(&d.join("a.json")),
        requested_uuid(&d.join("b.json"))
    );
    let database = schema.url();
    let env = [
        ("TALLY_DATABASE_URL", database.as_str()),
        ("TALLY_ADMIN_TOKEN", TOKEN),
    ];
    let (listen_a, listen_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let server_a = serve(d, "a", &listen_a, &public, r#"["machine-id"]"#, &env);
    let _server_b = serve(d, "b", &listen_b, &public, labels_b, &env);
    let (url_a, url_b) = (format!("http://{listen_a}"), format!("http://{listen_b}"));
    // Imported once: the other instance reads it from the database.
    ok(
        d,
        &[
            "admin",
            "--server",
            &url_a,
            "--token",
            TOKEN,
            "import",
            "acme.activated",
        ],
    );

    // 200 devices at once, every other one on each instance, for 5 places (no grace).
    let start = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let server = if n % 2 == 0 {
                url_a.clone()
            } else {
                url_b.clone()
            };
            let (public, state) = (public.clone(), d.join(format!("scanner-{n}")));
            let start = start.clone();
            std::thread::spawn(move || {
                let client = device(&[&server], &public, &state, "scanner");
                start.wait();
                client.authorize().map(|_| ()).map_err(|e| e.code)
            })
        })
        .collect();
    let outcomes: Vec<Result<(), ErrorCode>> =
        tasks.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 5);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(()) | Err(ErrorCode::DeviceQuotaExceeded))),
        "{outcomes:?}"
    );

    // 12 devices report round after round; instance A is killed while they do.
    const DEVICES: usize = 12;
    const ROUNDS: u64 = 10;
    let flushes = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..DEVICES)
        .map(|n| {
            let (a, b) = (url_a.clone(), url_b.clone());
            let (public, state) = (public.clone(), d.join(format!("reader-{n}")));
            let flushes = flushes.clone();
            std::thread::spawn(move || {
                let client = device(&[&a, &b], &public, &state, "reader");
                client.authorize().unwrap();
                for round in 1..=ROUNDS {
                    client.record_usage("scan", round).unwrap();
                    // A flush cut off by the kill keeps its reports for the next one.
                    let _ = client.flush();
                    flushes.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match client.flush() {
                        Ok(outcome) if outcome.pending == 0 => break,
                        other => assert!(Instant::now() < deadline, "still pending: {other:?}"),
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    let halfway = DEVICES * ROUNDS as usize / 2;
    let deadline = Instant::now() + Duration::from_secs(120);
    while flushes.load(Ordering::SeqCst) < halfway {
        assert!(Instant::now() < deadline, "the devices did not report");
        std::thread::sleep(Duration::from_millis(5));
    }
    server_a.kill();
    for t in tasks {
        t.join().unwrap();
    }
    let recorded = DEVICES as u64 * (1..=ROUNDS).sum::<u64>();
    assert_eq!(
        scans_counted(&url_b),
        recorded,
        "every report acknowledged by either instance is counted once"
    );
}

/// Two in-process instances (each its own identity and clock at `T0`) on a fresh schema, with
/// license `L-1` (5 devices of `scanner` for `acme`) activated for both and imported on the
/// first.
fn two_instances(schema: &Schema) -> (TestServer, TestServer) {
    let vendor = tally_crypto::SigningKey::generate().unwrap();
    let a = TestServer::start_on_database(&schema.url(), vendor.clone(), "machine-1");
    let b = TestServer::start_on_database(&schema.url(), vendor.clone(), "machine-2");
    a.import(&activated_for(&vendor, "L-1", "acme", &[&a, &b], T0));
    (a, b)
}

#[test]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
fn a_report_session_continues_on_another_instance_which_refuses_its_replays() {
    let schema = Schema::create("sessions");
    let (a, b) = two_instances(&schema);
    let (session, key) = open_session(&a, "device-1");
    let t = session.ticket.as_str();
    let first = session_body(t, 1, &key, &session_report_request(&a, "r-1"));
    let (status, text) = post_raw(&a, PATH_SESSION_REPORT, &first);
    assert_eq!(status, 200, "{text}");
    // The message the first instance accepted, sent to the second: refused, counted nowhere.
    assert_eq!(
        plain_error(post_raw(&b, PATH_SESSION_REPORT, &first)),
        (409, "replayed_request".to_string())
    );
    // The session itself goes on there.
    let second = session_body(t, 2, &key, &session_report_request(&b, "r-2"));
    let (status, text) = post_raw(&b, PATH_SESSION_REPORT, &second);
    assert_eq!(status, 200, "{text}");
    match open_session_reply(&key, 2, t, &text) {
        Reply::Ok(r) => assert_eq!(r.accepted, ["r-2"]),
        Reply::Err(e) => panic!("refused: {e:?}"),
    }
    assert_eq!(
        plain_error(post_raw(&a, PATH_SESSION_REPORT, &second)),
        (409, "replayed_request".to_string())
    );
    let stats: Vec<UsageRow> = a.admin_ok("GET", "/stats/usage", None);
    assert_eq!(stats.iter().map(|d| d.count).sum::<u64>(), 4, "{stats:?}");
}

#[test]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
fn instances_evaluating_at_once_send_an_alert_once() {
    let schema = Schema::create("alerts");
    let (a, b) = two_instances(&schema);
    // 4 of 5 devices: the 60 % and 80 % thresholds are crossed.
    for n in 1..=4 {
        open_session(if n % 2 == 0 { &a } else { &b }, &format!("device-{n}"));
    }
    let evaluations: Vec<_> = [&a, &b, &a, &b]
        .into_iter()
        .map(|s| {
            let (url, token) = (s.url.clone(), s.token());
            std::thread::spawn(move || {
                let mut resp = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .new_agent()
                    .post(&format!("{url}/api/admin/alerts/evaluate"))
                    .header("Authorization", &format!("Bearer {token}"))
                    .send_empty()
                    .unwrap();
                (
                    resp.status().as_u16(),
                    resp.body_mut().read_to_string().unwrap(),
                )
            })
        })
        .collect();
    for e in evaluations {
        let (status, body) = e.join().unwrap();
        assert_eq!(status, 200, "{body}");
    }
    // Two evaluations asked of each instance: the lease also keeps one instance's apart.
    let history: Vec<AlertView> = b.admin_ok("GET", "/alerts", None);
    let usage: Vec<&AlertView> = history
        .iter()
        .filter(|alert| alert.body.contains("L-1-1"))
        .collect();
    assert_eq!(usage.len(), 1, "{history:?}");
}
