//! The real `tally` binary: the vendor's flow and the demo server, as a user runs them.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TALLY: &str = env!("CARGO_BIN_EXE_tally");

/// `tally args` in `dir`, without the caller's `TALLY_*` variables or `~/.config/tally/admin.toml`
/// (a developer's own setup must not change a test, and the server refuses `TALLY_*` variables
/// it does not know).
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(TALLY);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TALLY_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("TALLY_HARDWARE_LABELS", "[\"machine-id\"]");
    cmd
}

/// Runs `cmd`, which must succeed; its standard output.
pub fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, which must fail; its standard error.
pub fn fails_with(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    succeeds(&mut command(dir, args))
}

pub fn fails(dir: &Path, args: &[&str]) -> String {
    fails_with(&mut command(dir, args))
}

fn public_key_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("vendor.key")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("public: "))
        .unwrap()
        .to_owned()
}

#[test]
fn vendor_issues_activates_and_verifies_license_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["vendor", "keygen", "--out", "vendor.key"]);
    fails(d, &["vendor", "keygen", "--out", "vendor.key"]);
    let public = public_key_of(d);
    ok(
        d,
        &[
            "vendor",
            "issue",
            "--key",
            "vendor.key",
            "--org-id",
            "1001",
            "--org-name",
            "Acme Corp",
            "--alias",
            "Acme 2026",
            "--license-id",
            "L-ACME",
            "--item",
            "product=scanner,type=per-device,quantity=5,start=2026-01-01,end=2027-01-01,modules=qr+pdf417",
            "--out",
            "acme.license",
        ],
    );
    let out = ok(
        d,
        &[
            "vendor",
            "verify",
            "acme.license",
            "--vendor-public",
            &public,
        ],
    );
    assert!(out.contains("L-ACME"), "{out}");

    // Bad item specs write nothing.
    let err = fails(
        d,
        &[
            "vendor",
            "issue",
            "--key",
            "vendor.key",
            "--org-id",
            "1001",
            "--org-name",
            "Acme",
            "--alias",
            "x",
            "--item",
            "product=scanner,type=per-device,quantity=0,start=2026-01-01,end=2027-01-01",
            "--out",
            "bad.license",
        ],
    );
    assert!(err.contains("quantity"), "{err}");
    assert!(!d.join("bad.license").exists());

    ok(
        d,
        &["identity", "--data-dir", "server", "--out", "request.json"],
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
            "request.json",
            "--out",
            "acme.activated",
        ],
    );
    let summary = ok(
        d,
        &[
            "vendor",
            "inspect",
            "acme.activated",
            "--vendor-public",
            &public,
        ],
    );
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("request.json")).unwrap()).unwrap();
    assert!(
        summary.contains(request["server"]["uuid"].as_str().unwrap()),
        "{summary}"
    );

    // One flipped byte anywhere fails verification.
    let text = std::fs::read_to_string(d.join("acme.activated")).unwrap();
    let tampered = text.replacen("scanner", "scannes", 1);
    std::fs::write(d.join("tampered.activated"), tampered).unwrap();
    let err = fails(
        d,
        &[
            "vendor",
            "verify",
            "tampered.activated",
            "--vendor-public",
            &public,
        ],
    );
    assert!(err.contains("signature"), "{err}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_server_authorizes_the_demo_client() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        command(
            d,
            &["serve", "--demo", "--listen", &listen, "--data-dir", "data"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let config = d.join("data/demo/client.toml");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(config.exists() && std::net::TcpStream::connect(&listen).is_ok()) {
        assert!(Instant::now() < deadline, "the demo server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second server on the same data directory refuses to start, and says why.
    let other = format!("127.0.0.1:{}", free_port());
    let refused = fails(d, &["serve", "--listen", &other, "--data-dir", "data"]);
    assert!(
        refused.contains("is in use by another Tally server"),
        "{refused}"
    );
    assert!(std::net::TcpStream::connect(&other).is_err());
    let config = config.to_str().unwrap();
    let out = ok(d, &["client", "--config", config, "authorize"]);
    assert!(out.contains("authorized"), "{out}");
    ok(d, &["client", "--config", config, "record", "scan", "3"]);
    let out = ok(d, &["client", "--config", config, "flush"]);
    assert!(
        out.contains("1 acknowledged") || out.contains("acknowledged 1"),
        "{out}"
    );
    // The demo's file names the same device from any directory.
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let here = ok(d, &["client", "--config", config, "status"]);
    let there = ok(&elsewhere, &["client", "--config", config, "status"]);
    assert_eq!(here.lines().next(), there.lines().next());
    let server = format!("http://{listen}");
    let stats = ok(
        d,
        &["admin", "--server", &server, "--data-dir", "data", "stats"],
    );
    assert!(stats.contains("demo-default\tscan\t3"), "{stats}");
    let admin = [
        "admin",
        "--server",
        &server,
        "--data-dir",
        "data",
        "devices",
    ];
    let devices = ok(d, &admin);
    assert!(devices.contains("demo device"), "{devices}");
    assert!(devices.contains("\n1 device\n"), "{devices}");
    let page = ok(d, &[&admin[..], &["--limit", "1"]].concat());
    assert!(
        page.contains("demo device") && page.contains("(next page: --offset 1)"),
        "{page}"
    );
    let past_the_end = ok(d, &[&admin[..], &["--offset", "1"]].concat());
    assert!(!past_the_end.contains("demo device"), "{past_the_end}");
    let all = ok(d, &[&admin[..], &["--all"]].concat());
    assert!(all.contains("demo device"), "{all}");
}

/// The line of `out` that starts with `prefix`; the test fails if there is none.
fn line_starting<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {out}"))
}

#[test]
fn the_load_generator_runs_every_phase_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "bench",
            "--seconds",
            "1",
            "--connections",
            "2",
            "--devices",
            "10",
            "--no-pin",
            "--pool",
            "300",
            "--registered",
            "2000",
            "--codes",
            "5",
            "--rounds",
            "2",
        ],
    );
    for phase in [
        "bare echo (baseline)",
        "durable echo (baseline)",
        "crypto only (baseline)",
        "authorize",
        "usage report (session)",
        "authorize at half peak",
        "usage report at half peak",
    ] {
        let line = line_starting(&out, phase);
        let errors: u64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert_eq!(errors, 0, "{line}");
    }
    for ratio in [
        "authorize / crypto-only baseline:",
        "usage report (session) / bare echo:",
        "durable echo / bare echo:",
        "usage report (session) / durable echo:",
    ] {
        let line = line_starting(&out, ratio);
        assert!(line.contains("(median of 2 rounds, "), "{line}");
    }
    assert!(
        out.contains("round 1: echo ") && out.contains("round 2: echo "),
        "{out}"
    );
    assert!(
        line_starting(&out, "round 1: ").contains(", durable echo "),
        "{out}"
    );
    assert!(out.contains("server RSS after the run:"), "{out}");
    assert!(
        out.contains("server start-up with 2000 registered devices:"),
        "{out}"
    );
}

#[test]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
fn the_load_generator_runs_the_store_phases_on_postgres_too() {
    let dir = tempfile::tempdir().unwrap();
    let database = std::env::var("TALLY_TEST_DATABASE_URL").unwrap();
    let out = ok(
        dir.path(),
        &[
            "bench",
            "--seconds",
            "1",
            "--connections",
            "2",
            "--devices",
            "10",
            "--no-pin",
            "--pool",
            "300",
            "--phases",
            "authorize,report",
            "--skip-half-load",
            "--database",
            &database,
        ],
    );
    for phase in [
        "authorize",
        "usage report (session)",
        "authorize (postgres)",
        "usage report (postgres)",
    ] {
        let line = line_starting(&out, phase);
        let errors: u64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert_eq!(errors, 0, "{line}");
        let rate: f64 = line
            .split_whitespace()
            .rev()
            .nth(4)
            .unwrap()
            .parse()
            .unwrap();
        assert!(rate > 0.0, "{line}");
    }
    line_starting(&out, "authorize: postgres / sqlite:");
    line_starting(&out, "usage report: postgres / sqlite:");
    // The bench's schema is gone afterwards.
    let left = crate::postgres::pg_column(
        &database,
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tally_bench_%'",
    );
    assert_eq!(left, ["0"], "{out}");
}
