//! Real `tally serve` processes for the tests that start, stop and kill servers as an operator
//! does, and the demo client driven from a shell.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{command, ok};

/// A server process, killed (SIGKILL) when dropped.
pub struct Server(pub Child);

impl Server {
    /// Stops the server as an operator does (SIGTERM): it finishes and closes its database.
    pub fn stop(mut self) {
        let pid = self.0.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or a lost machine would.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `listen` and `ready` holds.
pub fn wait_until_serving(listen: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(ready() && std::net::TcpStream::connect(listen).is_ok()) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the demo server on the data directory `data` of `d` with extra `env`; returns it once
/// it answers.
pub fn serve_demo(d: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
    let mut cmd = command(
        d,
        &["serve", "--demo", "--listen", listen, "--data-dir", "data"],
    );
    cmd.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Server(cmd.spawn().unwrap());
    let config = d.join("data/demo/client.toml");
    wait_until_serving(listen, || config.exists());
    server
}

/// Records `count` scans through the demo client and has the server acknowledge them.
pub fn report_scans(d: &Path, count: u32) {
    let config = d.join("data/demo/client.toml");
    let config = config.to_str().unwrap();
    ok(d, &["client", "--config", config, "authorize"]);
    let count = count.to_string();
    ok(d, &["client", "--config", config, "record", "scan", &count]);
    let out = ok(d, &["client", "--config", config, "flush"]);
    assert!(out.contains("acknowledged"), "{out}");
}

/// `tally admin --server http://listen --data-dir data args` in `d`.
pub fn admin(d: &Path, listen: &str, args: &[&str]) -> String {
    let server = format!("http://{listen}");
    let mut all = vec!["admin", "--server", &server, "--data-dir", "data"];
    all.extend_from_slice(args);
    ok(d, &all)
}

/// `tally serve` on data directory `data` of `d` with hardware `labels`; returns it once it
/// answers.
pub fn serve(
    d: &Path,
    data: &str,
    listen: &str,
    vendor_public: &str,
    labels: &str,
    env: &[(&str, &str)],
) -> Server {
    let mut cmd = command(
        d,
        &[
            "serve",
            "--listen",
            listen,
            "--data-dir",
            data,
            "--vendor-public-key",
            vendor_public,
        ],
    );
    cmd.env("TALLY_HARDWARE_LABELS", labels)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Server(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server on {data} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// The `server.uuid` of an activation request file.
pub fn requested_uuid(path: &Path) -> String {
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    request["server"]["uuid"].as_str().unwrap().to_owned()
}

/// The hardware labels of a second instance on this same machine: the UUID comes from the
/// labels, so the second instance reads others than the first (`machine-id`). The first set this
/// machine can read is kept, with the request `tally identity` wrote for it to `request`.
pub fn second_machine_labels(d: &Path, data: &str, request: &str) -> &'static str {
    let first = requested_uuid(&d.join("a.json"));
    for labels in [r#"["processor-id"]"#, r#"["mac"]"#, r#"["board-serial"]"#] {
        let out = command(d, &["identity", "--data-dir", data, "--out", request])
            .env("TALLY_HARDWARE_LABELS", labels)
            .output()
            .unwrap();
        if out.status.success() && requested_uuid(&d.join(request)) != first {
            return labels;
        }
        let _ = std::fs::remove_dir_all(d.join(data));
    }
    panic!("this machine offers no hardware label besides machine-id for a second identity");
}

/// What [`activate_for_two`] prepared in its folder.
pub struct TwoInstances {
    /// The vendor's public key.
    pub public: String,
    /// The hardware labels of instance `b` (instance `a` reads `machine-id`).
    pub labels_b: &'static str,
    /// What `tally vendor activate` printed.
    pub activated: String,
}

/// In `d`: a vendor key `vendor.key` and license `license_id` (alias `alias`) of organization
/// `acme` with `items` (`--item` specs) issued to `acme.license`; the vendor's public key.
pub fn issue_for_acme(d: &Path, license_id: &str, alias: &str, items: &[&str]) -> String {
    let public = ok(d, &["vendor", "keygen", "--out", "vendor.key"])
        .trim()
        .to_owned();
    let mut issue = vec![
        "vendor",
        "issue",
        "--key",
        "vendor.key",
        "--org-id",
        "acme",
        "--org-name",
        "Acme Corp",
        "--alias",
        alias,
        "--license-id",
        license_id,
        "--out",
        "acme.license",
    ];
    for item in items {
        issue.extend(["--item", item]);
    }
    ok(d, &issue);
    public
}

/// In `d`: [`issue_for_acme`], the identity of the instance with data directory `data`, and the
/// license activated for it to `acme.activated`; the vendor's public key.
pub fn activate_for_one(d: &Path, license_id: &str, alias: &str, items: &[&str]) -> String {
    let public = issue_for_acme(d, license_id, alias, items);
    ok(
        d,
        &["identity", "--data-dir", "data", "--out", "request.json"],
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
    public
}

/// In `d`: a vendor key, license `license_id` of organization `acme` with `items` (`--item`
/// specs) issued to `acme.license`, the identities of instances `a` and `b` (each its own
/// UUID), and the license activated for both to `acme.activated`.
pub fn activate_for_two(d: &Path, license_id: &str, items: &[&str]) -> TwoInstances {
    let public = issue_for_acme(d, license_id, "Acme cluster", items);
    // Each instance has its own data directory, keys and hardware-bound UUID.
    ok(d, &["identity", "--data-dir", "a", "--out", "a.json"]);
    let labels_b = second_machine_labels(d, "b", "b.json");
    let activated = ok(
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
    TwoInstances {
        public,
        labels_b,
        activated,
    }
}
