//! Several `tally serve` processes on one PostgreSQL database, all active, as an operator runs
//! them: devices reach either instance and share one quota, and when one instance is killed
//! (SIGKILL) in the middle of their reports, the devices continue on the other through their
//! server list and every report counts exactly once.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tally_proto::ErrorCode;
use tally_proto::admin::UsageRow;
use tally_sdk::{Client, Config};

use crate::cli::ok;
use crate::postgres::Schema;
use crate::processes::{free_port, requested_uuid, second_machine_labels, serve};

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
    let public = ok(d, &["vendor", "keygen", "--out", "vendor.key"])
        .trim()
        .to_owned();
    ok(
        d,
        &[
            "vendor",
            "issue",
            "--key",
            "vendor.key",
            "--org-id",
            "acme",
            "--org-name",
            "Acme Corp",
            "--alias",
            "Acme cluster",
            "--license-id",
            "L-SHARED",
            "--item",
            "product=scanner,type=per-device,quantity=5,grace=0,start=2020-01-01,end=2099-01-01",
            "--item",
            "product=reader,type=per-device,quantity=100,start=2020-01-01,end=2099-01-01",
            "--out",
            "acme.license",
        ],
    );
    ok(d, &["identity", "--data-dir", "a", "--out", "a.json"]);
    let labels_b = second_machine_labels(d, "b", "b.json");
    assert_ne!(
        requested_uuid(&d.join("a.json")),
        requested_uuid(&d.join("b.json"))
    );
    ok(
        d,
        &[
            "vendor",
            "activate",
            "--key",
            "vendor.key",
            "--license",
            "acme.license",
            "--request",
            "a.json",
            "--request",
            "b.json",
            "--out",
            "acme.activated",
        ],
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
