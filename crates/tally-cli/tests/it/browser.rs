//! The portal in a real headless Chromium, driven through chromedriver: an administrator sets the
//! password with the setup token, imports a license, creates a handshake code, sees a week of a
//! small fleet's devices, usage and alerts, sets up email and webhooks, and signs out with the
//! keyboard. Every portal page is screenshotted on the way; with `TALLY_UPDATE_SCREENSHOTS=1` the
//! screenshots go to `docs/screenshots/` with a manifest of the templates they show.
//!
//! Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`). Without them the
//! browser test is reported as ignored, with the reason (`has_chromium`, see `build.rs`); under CI
//! it always runs and fails if they are missing. The manifest check needs no browser.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tally_proto::admin::{EmailSettings, HandshakeView, SmtpTls, WebhookSettings};
use tally_proto::license::Organization;

use crate::common::*;

const CHROMEDRIVER: &str = concat!(env!("TALLY_TEST_BIN_DIR"), "/chromedriver");
pub const CHROMIUM: &str = concat!(env!("TALLY_TEST_BIN_DIR"), "/chromium");

/// The address the browser uses, as an administrator would: Chromium resolves it to the test
/// server, so the pages show a real-looking URL rather than a loopback port.
const HOST: &str = "tally.example.com:48080";

/// The command that refreshes `docs/screenshots/`.
const REFRESH: &str = "TALLY_UPDATE_SCREENSHOTS=1 cargo test -p tally-cli --test it browser";

/// Every screenshot, in the order the test takes them, and the templates it shows (besides the
/// layout and the stylesheet, which every page shows).
const SCREENSHOTS: &[(&str, &[&str])] = &[
    ("setup", &["setup.html"]),
    ("login", &["login.html"]),
    ("home", &["home.html"]),
    ("labels", &["labels.html"]),
    ("licenses", &["licenses.html"]),
    ("handshakes", &["handshakes.html"]),
    ("handshake", &["handshake.html"]),
    ("devices", &["devices.html"]),
    ("statistics", &["statistics.html"]),
    ("alerts", &["alerts.html"]),
    ("email", &["email.html"]),
    ("audit", &["audit.html"]),
    ("account", &["account.html"]),
    ("devices-narrow", &["devices.html"]),
    ("alerts-narrow", &["alerts.html"]),
];

/// Files every page shows.
const EVERY_PAGE: &[&str] = &[
    "crates/tally-server/templates/base.html",
    "crates/tally-server/static/tally.css",
];

/// The devices of the walk-through, in the order they join: friendly name, handshake code,
/// product, first day.
const FLEET: &[(&str, &str, &str, i64)] = &[
    ("Reception scanner", "front-desk", "scanner", 0),
    ("Front desk tablet", "front-desk", "scanner", 0),
    ("Warehouse scanner 1", "warehouse", "scanner", 0),
    ("Warehouse scanner 2", "warehouse", "scanner", 0),
    ("Warehouse scanner 3", "warehouse", "scanner", 1),
    ("Returns counter", "front-desk", "scanner", 2),
    ("Shipping label printer", "acme-default", "label-printer", 2),
    ("Warehouse scanner 4", "warehouse", "scanner", 3),
    ("Returns label printer", "acme-default", "label-printer", 3),
];
const DAYS: i64 = 7;
const HOUR: i64 = 3600;
const WAREHOUSE_PASSWORD: &str = "pallet-stacker-42";

pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver. The test runs only when the build found Chromium, or under CI: a missing
/// program is a failure here.
pub fn start_driver() -> Driver {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: apt-get install chromium chromium-driver (.ci/run does it)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, "chromedriver");
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless Chromium that reaches the server at `server` (`127.0.0.1:port`) under [`HOST`].
async fn browser(driver: &Driver, server: &str) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1280,1000",
                     format!("--host-resolver-rules=MAP {HOST} {server}")]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docs_dir() -> PathBuf {
    workspace().join("docs/screenshots")
}

/// The files a screenshot of `templates` shows, relative to the workspace.
fn shown_files(templates: &[&str]) -> Vec<String> {
    templates
        .iter()
        .map(|t| format!("crates/tally-server/templates/{t}"))
        .chain(EVERY_PAGE.iter().map(|f| (*f).to_owned()))
        .collect()
}

/// SHA-256 of a workspace file, in hex (line endings normalized, for checkouts that convert them).
fn sha256_hex(path: &str) -> String {
    let text = std::fs::read_to_string(workspace().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
        .replace("\r\n", "\n");
    tally_crypto::sha256(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The manifest for the files as they are now.
fn manifest_text() -> String {
    let mut text = format!(
        "# What each screenshot in this folder shows: the SHA-256 of every file that makes the page,\n\
         # as it was when the screenshot was taken. Written with the screenshots by\n\
         #   {REFRESH}\n\
         # and checked by the test browser::the_screenshots_show_the_current_templates.\n\
         # screenshot  sha256  file\n"
    );
    for (name, templates) in SCREENSHOTS {
        for file in shown_files(templates) {
            text.push_str(&format!("{name}.png  {}  {file}\n", sha256_hex(&file)));
        }
    }
    text
}

/// Saves screenshots to the test artifacts folder, and to `docs/screenshots` when asked to.
struct Shots {
    dirs: Vec<PathBuf>,
    taken: Vec<String>,
}

impl Shots {
    fn new() -> Self {
        let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
        if std::env::var_os("TALLY_UPDATE_SCREENSHOTS").is_some() {
            dirs.push(docs_dir());
        }
        Self {
            dirs,
            taken: Vec::new(),
        }
    }

    /// Screenshots the page, which must not show the test's loopback addresses.
    async fn take(&mut self, c: &Client, name: &str) {
        let page = text(c).await;
        assert!(
            !page.contains("127.0.0.1"),
            "the {name} screenshot would show a loopback address:\n{page}"
        );
        let png = c.screenshot().await.unwrap();
        for dir in &self.dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
        self.taken.push(name.to_owned());
    }

    /// Screenshots the whole page, for pages whose point is below the fold.
    async fn take_whole(&mut self, c: &Client, name: &str) {
        let (width, height) = c.get_window_size().await.unwrap();
        let script = "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight";
        let whole = c
            .execute(script, Vec::new())
            .await
            .unwrap()
            .as_u64()
            .unwrap();
        c.set_window_size(width as u32, whole as u32).await.unwrap();
        self.take(c, name).await;
        c.set_window_size(width as u32, height as u32)
            .await
            .unwrap();
    }

    /// Checks every screenshot was taken; writes the manifest next to refreshed screenshots.
    fn finish(self) {
        let expected: Vec<&str> = SCREENSHOTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(self.taken, expected, "the screenshots taken");
        for dir in &self.dirs {
            std::fs::write(dir.join("manifest"), manifest_text()).unwrap();
        }
        if self.dirs.contains(&docs_dir()) {
            assert_screenshots_current(false);
        }
    }
}

async fn visit(c: &Client, path: &str) {
    c.goto(&format!("http://{HOST}{path}")).await.unwrap();
}

async fn fill(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn value(c: &Client, id: &str) -> String {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.prop("value").await.unwrap().unwrap_or_default()
}

/// Clicks the first submit button of the form posting to `action`.
async fn submit_form(c: &Client, action: &str) {
    c.find(Locator::Css(&format!(
        "main form[action='{action}'] button[type=submit]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

async fn text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The page text once it contains every one of `needles` (pages load after a form is sent).
async fn wait_for(c: &Client, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = text(c).await;
        if needles.iter().all(|n| page.contains(n)) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {needles:?}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acme's license, activated for this server: 10 scanners (10 % grace) and 3 label printers.
fn acme_license(s: &TestServer) -> String {
    let mut license = license(
        "ACME-2026",
        "acme",
        vec![
            per_device("ACME-2026-1", "scanner", 10, 10),
            per_device("ACME-2026-2", "label-printer", 3, 0),
        ],
    );
    license.organization = Organization {
        id: "acme".into(),
        name: "Acme Logistics".into(),
    };
    license.alias = "Warehouse and front office".into();
    let issued = tally_crypto::document::issue_license(&license, &s.vendor).unwrap();
    tally_crypto::document::activate_license(
        &issued,
        &s.state.identity.activation_request(),
        &s.vendor,
        T0,
    )
    .unwrap()
}

/// A stand-in SMTP server that accepts every message and passes it on. (The alert tests use a
/// real one; here only the alert history's "sent" matters, and it must not need python3-aiosmtpd.)
fn smtp_stub() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut out) = stream else { continue };
            let mut input = BufReader::new(out.try_clone().unwrap());
            let _ = out.write_all(b"220 smtp.example.com ESMTP\r\n");
            let (mut line, mut message, mut in_data) = (String::new(), String::new(), false);
            while input.read_line(&mut line).unwrap_or(0) > 0 {
                let reply: &[u8] = if in_data && line == ".\r\n" {
                    in_data = false;
                    let _ = tx.send(std::mem::take(&mut message));
                    b"250 queued\r\n"
                } else if in_data {
                    message.push_str(&line);
                    b""
                } else {
                    match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                        Some("DATA") => {
                            in_data = true;
                            b"354 end with a dot\r\n"
                        }
                        Some("QUIT") => b"221 bye\r\n",
                        _ => b"250 OK\r\n",
                    }
                };
                let _ = out.write_all(reply);
                line.clear();
            }
        }
    });
    (port, rx)
}

/// A week of the fleet: devices join, report usage each working day (some skip a day), and the
/// alert evaluation runs every evening, as the server's timer would. Returns the alerts sent.
fn a_week_of_work(s: &TestServer) -> usize {
    let mut devices: Vec<tally_sdk::Client> = Vec::new();
    let mut alerts = 0;
    for day in 0..DAYS {
        for (i, (name, code, product, first_day)) in FLEET.iter().enumerate() {
            if day < *first_day || (day > *first_day && (day + i as i64) % 5 == 4) {
                continue;
            }
            s.clock.set(T0 + day * DAY + 10 * HOUR + i as i64 * 2400);
            if i == devices.len() {
                let mut config = crate::e2e::config(s, &format!("device-{i}"));
                config.handshake_code = (*code).into();
                config.product = (*product).into();
                config.friendly_name = Some((*name).into());
                if *code == "warehouse" {
                    config.session_password = Some(WAREHOUSE_PASSWORD.into());
                }
                let device = crate::e2e::client(s, config);
                device.authorize().unwrap();
                devices.push(device);
            }
            let device = &devices[i];
            let busy = (i as i64 * 7 + day * 13) % 30;
            if *product == "scanner" {
                device.record_usage("scan", 20 + busy as u64).unwrap();
                if day % 2 == 0 {
                    device.record_usage("export", 1 + busy as u64 / 10).unwrap();
                }
            } else {
                device.record_usage("print", 35 + busy as u64).unwrap();
            }
            device.flush().unwrap();
        }
        s.clock.set(T0 + day * DAY + 18 * HOUR);
        let evaluated: serde_json::Value = s.admin_ok(
            "POST",
            "/alerts/evaluate",
            Some(("application/json", Vec::new())),
        );
        alerts += usize::from(evaluated["alert_id"].is_i64());
    }
    alerts
}

#[test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs chromium and chromium-driver: apt-get install chromium chromium-driver"
)]
fn an_administrator_walks_every_portal_page_in_a_real_browser() {
    let driver = start_driver();
    let s = TestServer::start_with(|settings| settings.listen = ([0, 0, 0, 0], 48080).into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = rt.block_on(browser(&driver, s.url.trim_start_matches("http://")));
    let mut shots = Shots::new();
    let uuid = s.state.identity.uuid.clone();

    // Monday morning: the administrator installs Tally.
    s.clock.set(T0 + 9 * HOUR);
    rt.block_on(async {
        // First run: the portal asks for the setup token.
        visit(&c, "/").await;
        assert!(c.current_url().await.unwrap().path().ends_with("/setup"));
        shots.take(&c, "setup").await;
        fill(&c, "token", &s.state.setup_token).await;
        fill(&c, "password", "a long portal password").await;
        fill(&c, "confirm", "a long portal password").await;
        submit_form(&c, "/setup").await;
        wait_for(&c, &[&uuid, "Activation request", "No license imported"]).await;

        // Import the license by pasting it.
        s.clock.advance(240);
        visit(&c, "/licenses").await;
        fill(&c, "text", &acme_license(&s)).await;
        submit_form(&c, "/licenses").await;
        wait_for(
            &c,
            &["The license was imported", "ACME-2026-1", "ACME-2026-2"],
        )
        .await;

        // A handshake code for the front desk's scanners.
        s.clock.advance(300);
        visit(&c, "/handshakes").await;
        fill(&c, "code", "front-desk").await;
        fill(&c, "items", "ACME-2026-1").await;
        fill(&c, "description", "Scanners at the front desk").await;
        submit_form(&c, "/handshakes").await;
        wait_for(&c, &["Handshake code front-desk", "Saved."]).await;
    });

    // The warehouse's scanners get a code of their own, with a session password, through the API.
    s.clock.advance(600);
    let _: HandshakeView = s.admin_ok(
        "POST",
        "/handshakes",
        Some((
            "application/json",
            serde_json::to_vec(&json!({
                "code": "warehouse", "organization": "acme", "items": ["ACME-2026-1"],
                "description": "Handheld scanners in the warehouse",
            }))
            .unwrap(),
        )),
    );
    update_code(
        &s,
        "warehouse",
        json!({"session_password": WAREHOUSE_PASSWORD}),
    );
    // Alerts go to a stand-in SMTP server and a webhook receiver (set in the store directly, so
    // that neither address shows up in the audit log).
    let (smtp_port, mails) = smtp_stub();
    let (hook_url, hooks) = crate::alerts::receiver(200);
    rt.block_on(async {
        use tally_server::service::alerting;
        let email = EmailSettings {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: SmtpTls::None,
            sender: "Tally <tally@example.com>".into(),
            username: None,
            password: None,
            to: vec!["it-admin@example.com".into()],
            cc: Vec::new(),
            bcc: Vec::new(),
        };
        let hooks = WebhookSettings {
            urls: vec![hook_url],
            secret: "a webhook secret of some length".into(),
        };
        alerting::save_email(&s.state, email).await.unwrap();
        alerting::save_webhooks(&s.state, hooks).await.unwrap();
    });
    // Scanners: 6 of 10 on the third day (60 %); label printers: 2 of 3 on the fourth.
    assert_eq!(a_week_of_work(&s), 2, "two alerts in the week");
    for _ in 0..2 {
        let mail = mails.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(mail.contains("usage reached 60 %"), "{mail}");
        hooks.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let names: Vec<&str> = FLEET.iter().map(|d| d.0).collect();

    rt.block_on(async {
        // A week later the session has expired: the administrator signs in again.
        s.clock.set(T0 + (DAYS - 1) * DAY + 18 * HOUR + 20 * 60);
        visit(&c, "/").await;
        wait_for(&c, &["Sign in", "Administrator password"]).await;
        shots.take(&c, "login").await;
        fill(&c, "password", "a long portal password").await;
        submit_form(&c, "/login").await;
        wait_for(
            &c,
            &[
                &uuid,
                "Serving",
                "1 · 2 · 9",
                "http://tally.example.com:48080",
                "0.0.0.0:48080",
            ],
        )
        .await;
        shots.take(&c, "home").await;

        visit(&c, "/labels").await;
        wait_for(&c, &["is derived from these hardware labels", &uuid]).await;
        shots.take(&c, "labels").await;

        visit(&c, "/licenses").await;
        wait_for(&c, &["ACME-2026-1", "7 / 10", "2 / 3"]).await;
        shots.take(&c, "licenses").await;

        visit(&c, "/handshakes").await;
        wait_for(&c, &["front-desk", "warehouse", "acme-default", "password"]).await;
        shots.take(&c, "handshakes").await;

        visit(&c, "/handshakes/front-desk").await;
        wait_for(&c, &["Handshake code front-desk", "scan", "export"]).await;
        shots.take_whole(&c, "handshake").await;

        visit(&c, "/devices").await;
        wait_for(&c, &names).await;
        shots.take(&c, "devices").await;

        visit(&c, "/statistics?days=7").await;
        wait_for(&c, &["Usage per day", "scan", "export", "print"]).await;
        shots.take(&c, "statistics").await;

        visit(&c, "/alerts").await;
        let page = wait_for(&c, &["Tally: 1 license alert", "ACME-2026-2"]).await;
        assert_eq!(page.matches("usage reached 60 %").count(), 2, "{page}");
        assert_eq!(
            page.matches("sent").count(),
            4,
            "email and webhooks:\n{page}"
        );
        shots.take(&c, "alerts").await;

        // The administrator points alerts at the company's mail server and chat webhook.
        visit(&c, "/email").await;
        fill(&c, "host", "smtp.example.com").await;
        fill(&c, "port", "587").await;
        c.find(Locator::Css("#tls option[value=starttls]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        fill(&c, "sender", "Tally <tally@example.com>").await;
        fill(&c, "username", "tally@example.com").await;
        fill(&c, "password", "an smtp password").await;
        fill(&c, "to", "it-admin@example.com\nlicenses@example.com").await;
        fill(&c, "cc", "ops@example.com").await;
        submit_form(&c, "/email").await;
        wait_for(&c, &["Saved.", "Password (saved; leave empty to keep)"]).await;
        s.clock.advance(90);
        fill(&c, "urls", "https://chat.example.com/hooks/tally-alerts").await;
        submit_form(&c, "/webhooks").await;
        wait_for(&c, &["Saved."]).await;
        assert_eq!(value(&c, "host").await, "smtp.example.com");
        assert_eq!(
            value(&c, "urls").await.trim(),
            "https://chat.example.com/hooks/tally-alerts"
        );
        shots.take_whole(&c, "email").await;

        visit(&c, "/audit").await;
        wait_for(
            &c,
            &[
                "portal.setup",
                "license.import",
                "handshake.create",
                "handshake.update",
                "email.settings",
                "smtp.example.com:587",
                "webhooks.settings",
            ],
        )
        .await;
        shots.take(&c, "audit").await;

        visit(&c, "/account").await;
        wait_for(&c, &["Change the administrator password"]).await;
        shots.take(&c, "account").await;

        // Narrow screen (375 px, a small phone): the devices page and its actions, and the
        // alerts, read without scrolling sideways.
        c.set_window_size(375, 812).await.unwrap();
        visit(&c, "/devices").await;
        wait_for(&c, &["Reception scanner"]).await;
        let sideways = "return document.documentElement.scrollWidth > window.innerWidth";
        assert_eq!(
            c.execute(sideways, vec![]).await.unwrap(),
            json!(false),
            "the devices page fits 375 px"
        );
        let unregister = c.find(Locator::Css("td form button.danger")).await.unwrap();
        let reachable = "const r = arguments[0].getBoundingClientRect(); \
                         return r.left >= 0 && r.right <= window.innerWidth";
        assert_eq!(
            c.execute(reachable, vec![json!(unregister)]).await.unwrap(),
            json!(true),
            "a device's Unregister button is on screen"
        );
        shots.take(&c, "devices-narrow").await;
        visit(&c, "/alerts").await;
        wait_for(&c, &["Delivery attempts"]).await;
        assert_eq!(
            c.execute(sideways, vec![]).await.unwrap(),
            json!(false),
            "the alerts page fits 375 px"
        );
        shots.take(&c, "alerts-narrow").await;

        // Keyboard: the sign-out button works with the Enter key.
        c.set_window_size(1280, 1000).await.unwrap();
        let sign_out = c.find(Locator::Css("header form button")).await.unwrap();
        let enter = char::from(fantoccini::key::Key::Enter).to_string();
        sign_out.send_keys(&enter).await.unwrap();
        wait_for(&c, &["Administrator password"]).await;
        c.close().await.unwrap();
    });
    shots.finish();
}

/// What is wrong with `docs/screenshots/`: PNGs no test takes, templates no screenshot shows, and
/// unless `static_only`, missing screenshots and templates changed since their screenshot.
fn screenshot_problems(static_only: bool) -> Vec<String> {
    let dir = docs_dir();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let taken = SCREENSHOTS.iter().any(|(n, _)| file == format!("{n}.png"));
        if file.ends_with(".png") && !taken {
            problems.push(format!(
                "{file} is not taken by the browser test: remove it"
            ));
        }
    }
    let templates = workspace().join("crates/tally-server/templates");
    for entry in std::fs::read_dir(&templates).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let shown = SCREENSHOTS.iter().any(|(_, t)| t.contains(&file.as_str()));
        if file != "base.html" && !shown {
            problems.push(format!(
                "no screenshot shows {file}: add one to SCREENSHOTS in tests/it/browser.rs"
            ));
        }
    }
    if static_only {
        return problems;
    }

    let manifest = std::fs::read_to_string(dir.join("manifest")).unwrap_or_default();
    let recorded: BTreeMap<(String, String), String> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [shot, hash, file] => Some(((shot.to_owned(), file.to_owned()), hash.to_owned())),
            _ => None,
        })
        .collect();
    if recorded.is_empty() {
        problems.push("docs/screenshots/manifest is missing or empty".to_owned());
    }
    let mut listed = Vec::new();
    for (name, templates) in SCREENSHOTS {
        let png = format!("{name}.png");
        if !dir.join(&png).exists() {
            problems.push(format!("{png} is missing"));
        }
        for file in shown_files(templates) {
            match recorded.get(&(png.clone(), file.clone())) {
                None if recorded.is_empty() => {}
                None => problems.push(format!("{png}: the manifest does not list {file}")),
                Some(hash) if *hash != sha256_hex(&file) => {
                    problems.push(format!("{png} shows {file}, which changed since"));
                }
                Some(_) => {}
            }
            listed.push((png.clone(), file));
        }
    }
    for (png, file) in recorded.keys() {
        if !listed.contains(&(png.clone(), file.clone())) {
            problems.push(format!(
                "the manifest lists {png} for {file}, which the browser test does not take"
            ));
        }
    }
    problems
}

fn assert_screenshots_current(static_only: bool) {
    let problems = screenshot_problems(static_only);
    assert!(
        problems.is_empty(),
        "docs/screenshots/ is out of date:\n  {}\nRefresh the screenshots and their manifest with\n  {REFRESH}\n\
         (needs chromium and chromium-driver), look at them, and commit them.",
        problems.join("\n  ")
    );
}

/// Each screenshot in `docs/screenshots/` was taken of the templates as they are now, and every
/// page template has one. Runs without a browser, so a changed page is noticed everywhere. While
/// the screenshots are being refreshed, the browser test checks its own result instead.
#[test]
fn the_screenshots_show_the_current_templates() {
    let refreshing = std::env::var_os("TALLY_UPDATE_SCREENSHOTS").is_some();
    assert_screenshots_current(refreshing);
}
