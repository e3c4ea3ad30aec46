//! A real server (SQLite store in a temp dir, manual clock) on 127.0.0.1, and helpers to drive it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tally_core::ManualClock;
use tally_crypto::SigningKey;
use tally_proto::ErrorBody;
use tally_proto::admin::ImportedLicense;
use tally_proto::license::{
    ActiveWindow, LICENSE_FORMAT, License, LicenseItem, LicenseType, Organization,
};
use tally_server::identity::{FixedProbe, HardwareLabel, ServerIdentity};
use tally_server::{AppState, Settings};

/// 2026-06-01T00:00:00Z, the tests' "now".
pub const T0: i64 = 1_780_272_000;
pub const DAY: i64 = 86_400;

pub fn probe(machine: &str) -> FixedProbe {
    FixedProbe(BTreeMap::from([
        (HardwareLabel::MachineId, machine.to_owned()),
        (HardwareLabel::Mac, "02:00:00:00:00:01".to_owned()),
    ]))
}

pub struct TestServer {
    pub url: String,
    pub clock: ManualClock,
    pub vendor: SigningKey,
    pub state: AppState,
    pub data: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    agent: ureq::Agent,
}

impl TestServer {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data, SigningKey::generate().unwrap(), "machine-1")
    }

    /// Starts a server whose settings `adjust` changes.
    pub fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_full(data, SigningKey::generate().unwrap(), "machine-1", adjust)
    }

    /// Starts a server in `data` (reused across restarts) seeing hardware `machine`.
    pub fn start_in(data: tempfile::TempDir, vendor: SigningKey, machine: &str) -> Self {
        Self::start_full(data, vendor, machine, |_| {})
    }

    /// Starts an instance seeing hardware `machine` whose store is the PostgreSQL database at
    /// `database_url`, which other instances may share.
    pub fn start_on_database(database_url: &str, vendor: SigningKey, machine: &str) -> Self {
        let url = database_url.to_owned();
        Self::start_full(tempfile::tempdir().unwrap(), vendor, machine, |settings| {
            settings.database_url = Some(url);
        })
    }

    fn start_full(
        data: tempfile::TempDir,
        vendor: SigningKey,
        machine: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let clock = ManualClock::new(T0);
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_owned(),
            vendor_public_key: Some(vendor.verifying_key().to_base64()),
            ..Settings::default()
        };
        adjust(&mut settings);
        let identity = ServerIdentity::load_or_create(
            &settings.data_dir,
            &settings.hardware_labels,
            &probe(machine),
            T0,
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn tally_store::Store> = match &settings.database_url {
            Some(url) => Arc::new(
                runtime
                    .block_on(tally_store_postgres::PostgresStore::connect(url))
                    .unwrap(),
            ),
            None => Arc::new(
                tally_store_sqlite::SqliteStore::open(&data.path().join("tally.db")).unwrap(),
            ),
        };
        let state = runtime
            .block_on(AppState::open(
                settings,
                store,
                Arc::new(clock.clone()),
                identity,
            ))
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        runtime.spawn(async move {
            tally_server::serve(listener, serving, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Self {
            url,
            clock,
            vendor,
            state,
            data,
            runtime: Some(runtime),
            shutdown: Some(tx),
            agent,
        }
    }

    /// Stops the server and hands back its data directory and vendor key for a restart.
    pub fn stop(mut self) -> (tempfile::TempDir, SigningKey) {
        self.halt();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().unwrap());
        (data, self.vendor.clone())
    }

    fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    pub fn token(&self) -> String {
        self.state.admin_token.clone()
    }

    /// Calls the admin API; returns the status and the raw body.
    pub fn admin(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> (u16, String) {
        let url = format!("{}/api/admin{path}", self.url);
        let auth = format!("Bearer {}", self.token());
        let mut resp = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &auth)
                .call()
                .unwrap(),
            ("PUT_JSON", Some((ct, b))) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", ct)
                .send(&b[..])
                .unwrap(),
            ("POST", Some((ct, b))) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", ct)
                .send(&b[..])
                .unwrap(),
            other => panic!("unsupported admin call {other:?}"),
        };
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap(),
        )
    }

    pub fn admin_ok<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> T {
        let (status, text) = self.admin(method, path, body);
        assert_eq!(status, 200, "{method} {path} failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn admin_err(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, ErrorBody) {
        let (status, text) = self.admin(method, path, body);
        assert_ne!(
            status, 200,
            "{method} {path} unexpectedly succeeded: {text}"
        );
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Issues a license with `items` for organization `org`, activates it for this server.
    pub fn activated(&self, license_id: &str, org: &str, items: Vec<LicenseItem>) -> String {
        let license = license(license_id, org, items);
        let issued = tally_crypto::document::issue_license(&license, &self.vendor).unwrap();
        tally_crypto::document::activate_license(
            &issued,
            &self.state.identity.activation_request(),
            &self.vendor,
            T0,
        )
        .unwrap()
    }

    pub fn import(&self, activated: &str) -> ImportedLicense {
        self.admin_ok(
            "POST",
            "/licenses",
            Some(("text/plain", activated.as_bytes().to_vec())),
        )
    }

    /// A fresh SDK state directory.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        let dir = self.data.path().join("clients").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.halt();
    }
}

pub fn license(license_id: &str, org: &str, items: Vec<LicenseItem>) -> License {
    License {
        format: LICENSE_FORMAT.into(),
        license_id: license_id.into(),
        organization: Organization {
            id: org.into(),
            name: format!("{org} Inc."),
        },
        alias: format!("{license_id} alias"),
        issued_at: T0,
        items,
    }
}

/// An item of `license_type` for product `scanner`, valid from a day before T0 for a year.
pub fn typed(id: &str, license_type: LicenseType, quantity: u64, grace: u8) -> LicenseItem {
    LicenseItem {
        license_type,
        ..per_device(id, "scanner", quantity, grace)
    }
}

/// Calls `PATCH /api/admin/handshakes/{code}`; returns the status and the body.
pub fn patch_code(s: &TestServer, code: &str, change: &serde_json::Value) -> (u16, String) {
    let url = format!("{}/api/admin/handshakes/{code}", s.url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .patch(&url)
        .header("Authorization", &format!("Bearer {}", s.token()))
        .header("Content-Type", "application/json")
        .send(&serde_json::to_vec(change).unwrap()[..])
        .unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

/// Changes a handshake code, expecting success.
pub fn update_code(
    s: &TestServer,
    code: &str,
    change: serde_json::Value,
) -> tally_proto::admin::HandshakeView {
    let (status, text) = patch_code(s, code, &change);
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A per-device item of `product` valid from a day before T0 for a year.
pub fn per_device(id: &str, product: &str, quantity: u64, grace: u8) -> LicenseItem {
    LicenseItem {
        id: id.into(),
        product: product.into(),
        versions: None,
        modules: vec!["qr".into(), "pdf417".into()],
        license_type: LicenseType::PerDevice,
        quantity,
        start: T0 - DAY,
        end: T0 + 365 * DAY,
        grace_percent: grace,
        active_window: ActiveWindow::Days30,
        metric: None,
        max_offline_days: None,
        grace_days: None,
    }
}

/// Waits until something listens on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}
