//! The processes a bench run measures: the real server (`tally serve`) on a temporary data
//! directory with a license imported, and the baselines; each pinned to core 0 when asked and
//! `taskset` exists.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tally_crypto::SigningKey;
use tally_proto::license::{
    ActivationRequest, ActiveWindow, LICENSE_FORMAT, License, LicenseItem, LicenseType,
    Organization,
};

/// A child process killed when dropped.
pub struct ChildGuard(Child);

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts this binary with `args`, on core 0 when `pin` and possible.
pub fn spawn(args: &[&str], pin: bool, envs: &[(&str, &str)]) -> anyhow::Result<ChildGuard> {
    let exe = std::env::current_exe().context("cannot find the tally binary")?;
    let taskset = pin && Path::new("/usr/bin/taskset").exists();
    let mut cmd = if taskset {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg("0").arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Ok(ChildGuard(
        cmd.spawn().context("cannot start a server process")?,
    ))
}

/// Waits until `url` answers (any status).
pub fn wait_for(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    while agent.get(url).call().is_err() {
        if Instant::now() > deadline {
            bail!("{url} did not answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The Tally server under test.
pub struct TallyServer {
    process: Option<ChildGuard>,
    launch: Launch,
    /// The activation request of the server (its UUID and keys).
    pub request: ActivationRequest,
    /// The activated bench license, as imported.
    pub activated: String,
}

/// The bench license: one per-device item named `BENCH-1` for product `bench-app` of
/// organization `bench`, with room for `quantity` devices.
fn bench_license(now: i64, quantity: u64) -> License {
    License {
        format: LICENSE_FORMAT.into(),
        license_id: "BENCH".into(),
        organization: Organization {
            id: "bench".into(),
            name: "Bench".into(),
        },
        alias: "bench".into(),
        issued_at: now,
        items: vec![LicenseItem {
            id: "BENCH-1".into(),
            product: "bench-app".into(),
            versions: None,
            modules: vec![],
            license_type: LicenseType::PerDevice,
            quantity,
            start: now - 86_400,
            end: now + 365 * 86_400,
            grace_percent: 10,
            active_window: ActiveWindow::Days30,
            metric: None,
            max_offline_days: None,
            grace_days: None,
        }],
    }
}

/// How the server process is started.
struct Launch {
    listen: String,
    data: PathBuf,
    pin: bool,
    token: String,
    vendor_public: String,
    /// A PostgreSQL database instead of the SQLite file in the data directory.
    database_url: Option<String>,
}

impl Launch {
    fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Starts the process and waits until it answers; also returns how long that took.
    fn start(&self) -> anyhow::Result<(ChildGuard, Duration)> {
        let started = Instant::now();
        let data = self.data.to_string_lossy().into_owned();
        let mut env = vec![
            ("TALLY_ADMIN_TOKEN", self.token.as_str()),
            ("TALLY_HARDWARE_LABELS", "[\"machine-id\"]"),
            ("RUST_LOG", "error"),
        ];
        if let Some(url) = &self.database_url {
            env.push(("TALLY_DATABASE_URL", url));
        }
        let child = spawn(
            &[
                "serve",
                "--listen",
                &self.listen,
                "--data-dir",
                &data,
                "--vendor-public-key",
                &self.vendor_public,
            ],
            self.pin,
            &env,
        )?;
        wait_for(&format!("{}/healthz", self.url()))?;
        Ok((child, started.elapsed()))
    }
}

impl TallyServer {
    /// Starts a server with its data directory in `dir`, on the SQLite store or on the
    /// PostgreSQL database `database_url`, and imports a bench license for `quantity` devices.
    pub fn start(
        dir: &Path,
        pin: bool,
        quantity: u64,
        database_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let vendor = SigningKey::generate()?;
        let launch = Launch {
            listen: format!("127.0.0.1:{}", free_port()?),
            data: dir.join("server"),
            pin,
            token: tally_crypto::random_id()?,
            vendor_public: vendor.verifying_key().to_base64(),
            database_url,
        };
        let (process, _) = launch.start()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = launch.url();
        let auth = format!("Bearer {}", launch.token);
        let request: ActivationRequest = serde_json::from_str(
            &agent
                .get(&format!("{url}/api/admin/activation-request"))
                .header("Authorization", &auth)
                .call()?
                .body_mut()
                .read_to_string()?,
        )?;
        let now = tally_core::Clock::now(&tally_core::SystemClock);
        let issued = tally_crypto::document::issue_license(&bench_license(now, quantity), &vendor)?;
        let activated = tally_crypto::document::activate_license(&issued, &request, &vendor, now)?;
        let mut resp = agent
            .post(&format!("{url}/api/admin/licenses"))
            .header("Authorization", &auth)
            .send(activated.as_bytes())?;
        if !resp.status().is_success() {
            bail!(
                "importing the bench license failed: {}",
                resp.body_mut().read_to_string()?
            );
        }
        Ok(Self {
            process: Some(process),
            launch,
            request,
            activated,
        })
    }

    /// `host:port` the server listens on.
    pub fn listen(&self) -> &str {
        &self.launch.listen
    }

    pub fn database(&self) -> PathBuf {
        self.launch.data.join(crate::store::DATABASE_FILE)
    }

    /// Stops the process (killed: every acknowledged write is already durable).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Starts the process again; returns the start-up time (until it answers `/healthz`).
    pub fn restart(&mut self) -> anyhow::Result<Duration> {
        self.stop();
        let (process, took) = self.launch.start()?;
        self.process = Some(process);
        Ok(took)
    }

    pub fn rss_mib(&self) -> Option<f64> {
        self.process.as_ref().and_then(|p| rss_mib(p.id()))
    }
}
