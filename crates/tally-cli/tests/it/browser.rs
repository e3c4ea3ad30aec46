//! The portal in a real headless Chromium, driven through chromedriver: an administrator sets the
//! password with the setup token, imports a license, creates a handshake code, and sees the
//! device the SDK authorized and its usage. Screenshots of the main pages are saved.
//!
//! Needs Debian's `chromium` and `chromium-driver` (installed by `.ci/run`). Without them the
//! test says so and stops, except under CI, where their absence is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    if !(std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromium-driver must be installed in CI (see .ci/run)"
        );
        eprintln!(
            "SKIPPED: the browser test needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        return None;
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
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// Where screenshots go: the test artifacts folder, and `docs/screenshots` when asked to refresh.
fn screenshot_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
    if std::env::var_os("TALLY_UPDATE_SCREENSHOTS").is_some() {
        dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots"));
    }
    dirs
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    for dir in screenshot_dirs() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

async fn fill(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn submit(c: &Client) {
    c.find(Locator::Css("main form button[type=submit]"))
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

#[test]
fn an_administrator_walks_the_portal_in_a_real_browser() {
    let Some(driver) = start_driver() else { return };
    let s = TestServer::start();
    let activated = s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1280,1000"]
        }
    });
    let caps = match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    let c = rt.block_on(async {
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap()
    });

    rt.block_on(async {
        // First run: the portal asks for the setup token.
        c.goto(&s.url).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/setup"));
        shot(&c, "setup").await;
        fill(&c, "token", &s.state.setup_token).await;
        fill(&c, "password", "a long portal password").await;
        fill(&c, "confirm", "a long portal password").await;
        submit(&c).await;
        wait_for(&c, &[&s.state.identity.uuid, "Activation request"]).await;
        shot(&c, "home").await;

        // Import the license by pasting it.
        c.goto(&format!("{}/licenses", s.url)).await.unwrap();
        fill(&c, "text", &activated).await;
        submit(&c).await;
        wait_for(&c, &["The license was imported", "L-1-1"]).await;
        shot(&c, "licenses").await;

        // Create a handshake code.
        c.goto(&format!("{}/handshakes", s.url)).await.unwrap();
        fill(&c, "code", "front-desk").await;
        fill(&c, "items", "L-1-1").await;
        fill(&c, "description", "Scanners at the front desk").await;
        submit(&c).await;
        wait_for(&c, &["Handshake code front-desk", "Saved."]).await;
        shot(&c, "handshake").await;
    });

    // A device authorizes with the SDK and reports usage.
    let mut config = crate::e2e::config(&s, "browser-device");
    config.handshake_code = "front-desk".into();
    config.friendly_name = Some("Reception scanner".into());
    let device = crate::e2e::client(&s, config);
    device.authorize().unwrap();
    device.record_usage("scan", 12).unwrap();
    device.flush().unwrap();

    rt.block_on(async {
        c.goto(&format!("{}/devices", s.url)).await.unwrap();
        wait_for(&c, &["Reception scanner", device.device_uuid()]).await;
        shot(&c, "devices").await;

        c.goto(&format!("{}/statistics?code=front-desk", s.url))
            .await
            .unwrap();
        wait_for(&c, &["Usage per day for front-desk", "scan", "12"]).await;
        shot(&c, "statistics").await;

        c.goto(&format!("{}/audit", s.url)).await.unwrap();
        wait_for(&c, &["license.import", "handshake.create"]).await;
        shot(&c, "audit").await;

        // Narrow screen: the devices page still reads.
        c.set_window_size(390, 844).await.unwrap();
        c.goto(&format!("{}/devices", s.url)).await.unwrap();
        shot(&c, "devices-narrow").await;

        // Keyboard: the sign-out button works with the Enter key.
        c.set_window_size(1280, 1000).await.unwrap();
        let sign_out = c.find(Locator::Css("header form button")).await.unwrap();
        let enter = char::from(fantoccini::key::Key::Enter).to_string();
        sign_out.send_keys(&enter).await.unwrap();
        wait_for(&c, &["Administrator password"]).await;
        c.close().await.unwrap();
    });
}
