//! The browser SDK (`bindings/js`) against a real `tally serve`: `npm ci`, its build, its node
//! tests (the protocol test vectors, the SDK's rules, and the SDK from Node against this server),
//! then the example page of `docs/sdk/browser.md` in a real headless Chromium, served from two
//! origins: on `http://127.0.0.1:…`, which the handshake code names, the page authorizes and its
//! usage reaches the server's statistics; the same page on `http://localhost:…` (an origin another
//! code names, so the browser may read the answer) is refused with `118 origin_not_allowed`.
//!
//! Needs Node.js 20.19 or newer with npm (`has_npm`) and, for the page, Chromium and chromedriver
//! (`has_chromium`); without them the tests are reported as ignored, with the reason. Under CI
//! they always run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tally_proto::admin::UsageRow;

use crate::cli::succeeds;
use crate::processes::{Server, activate_for_one, admin, free_port, serve};

const NPM: &str = concat!(env!("TALLY_TEST_BIN_DIR"), "/npm");
const PRODUCT: &str = "viewer";
/// The code the example page uses: its validation domain is the allowed page's host.
const SHOP: &str = "shop";
const ALLOWED_HOST: &str = "127.0.0.1";
/// Another customer's code, naming the other origin's host.
const PARTNER: &str = "partner";
const OTHER_HOST: &str = "localhost";

fn package() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bindings/js")
}

/// `npm args` in the package, with the test programs' folder first on the `PATH` (npm runs
/// `node`); its output, which must say it succeeded.
fn npm(args: &[&str], env: &[(&str, &str)]) -> String {
    let path = format!(
        "{}:{}",
        env!("TALLY_TEST_BIN_DIR"),
        std::env::var("PATH").unwrap_or_default()
    );
    succeeds(
        Command::new(NPM)
            .args(args)
            .current_dir(package())
            .env("PATH", path)
            .env("NO_UPDATE_NOTIFIER", "1")
            .envs(env.iter().copied()),
    )
}

/// `npm ci` and `npm run build`, once for the tests of this binary.
fn built() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !*built {
        assert!(
            Path::new(NPM).exists(),
            "{NPM} is missing: install Node.js 20.19 or newer with npm"
        );
        npm(&["ci", "--no-audit", "--no-fund"], &[]);
        npm(&["run", "build"], &[]);
        *built = true;
    }
}

/// A real server with a per-domain license of organization `acme` for product `viewer`, issued
/// and activated with the vendor tool, and the codes `shop` (domain 127.0.0.1) and `partner`
/// (domain localhost) on its item.
struct Licensed {
    dir: tempfile::TempDir,
    listen: String,
    vendor_public: String,
    _server: Server,
}

impl Licensed {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let day = |offset: i64| tally_proto::time_text::day(today + offset * 86_400);
        let item = format!(
            "product={PRODUCT},type=per-domain,quantity=2,start={},end={}",
            day(-1),
            day(365)
        );
        let vendor_public = activate_for_one(d, "L-WEB", "Acme web", &[&item]);
        let listen = format!("127.0.0.1:{}", free_port());
        let server = serve(d, "data", &listen, &vendor_public, r#"["machine-id"]"#, &[]);
        admin(d, &listen, &["import", "acme.activated"]);
        for (code, host) in [(SHOP, ALLOWED_HOST), (PARTNER, OTHER_HOST)] {
            admin(
                d,
                &listen,
                &[
                    "create-handshake",
                    "--organization",
                    "acme",
                    "--item",
                    "L-WEB-1",
                    "--code",
                    code,
                ],
            );
            admin(d, &listen, &["update-handshake", code, "--domain", host]);
        }
        Self {
            dir,
            listen,
            vendor_public,
            _server: server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Today's usage of `feature` on `code`, from the server's statistics.
    fn usage(&self, code: &str, feature: &str) -> u64 {
        let text = admin(
            self.dir.path(),
            &self.listen,
            &["--json", "stats", "--code", code],
        );
        let rows: Vec<UsageRow> = serde_json::from_str(&text).unwrap();
        rows.iter()
            .filter(|r| r.handshake_code == code && r.feature == feature)
            .map(|r| r.count)
            .sum()
    }
}

#[test]
#[cfg_attr(
    not(has_npm),
    ignore = "needs Node.js 20.19 or newer with npm (TALLY_TEST_BIN_DIR/node and npm)"
)]
fn the_sdk_passes_its_node_tests_and_vectors_against_a_real_server() {
    built();
    let s = Licensed::start();
    let url = s.url();
    let out = npm(
        &["test"],
        &[
            ("TALLY_TEST_SERVER", url.as_str()),
            ("TALLY_TEST_VENDOR_KEY", s.vendor_public.as_str()),
            ("TALLY_TEST_HANDSHAKE_CODE", SHOP),
            ("TALLY_TEST_PRODUCT", PRODUCT),
            ("TALLY_TEST_DOMAIN", ALLOWED_HOST),
        ],
    );
    assert!(out.contains("\n# fail 0\n"), "{out}");
    assert!(
        out.contains("\n# skipped 0\n"),
        "every node test ran:\n{out}"
    );
    // The usage the node tests reported is in the server's statistics: 2 + 1 exports.
    assert_eq!(s.usage(SHOP, "export"), 3, "{out}");
}

/// Serves the example page, the bundle and `tally.json` on `127.0.0.1:port` until the test
/// process ends.
fn static_site(tally_json: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = std::fs::read(package().join("example/index.html")).unwrap();
    let bundle = std::fs::read(package().join("dist/tally-sdk.js")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // The rest of the head is not needed.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/");
            let (status, kind, body): (&str, &str, &[u8]) = match path {
                "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", &page),
                "/tally-sdk.js" => ("200 OK", "text/javascript", &bundle),
                "/tally.json" => ("200 OK", "application/json", tally_json.as_bytes()),
                _ => ("404 Not Found", "text/plain", b"not found"),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

/// The value of `attribute` of the element `id` once the page has set it.
async fn attribute(c: &fantoccini::Client, id: &str, attribute: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(element) = c
            .find(fantoccini::Locator::Css(&format!("#{id}[{attribute}]")))
            .await
            && let Ok(Some(value)) = element.attr(attribute).await
        {
            return value;
        }
        let page = match c.find(fantoccini::Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        assert!(
            Instant::now() < deadline,
            "#{id} never got {attribute}; the page shows:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &fantoccini::Client, id: &str) -> String {
    c.find(fantoccini::Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.find(fantoccini::Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A headless Chromium through `driver`.
async fn headless(driver: &crate::browser::Driver) -> fantoccini::Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": crate::browser::CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--disable-quic"]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

#[test]
#[cfg_attr(
    any(not(has_npm), not(has_chromium)),
    ignore = "needs Node.js 20.19 or newer with npm, and chromium with chromium-driver"
)]
fn a_page_on_an_allowed_origin_authorizes_and_reports_and_one_elsewhere_is_refused() {
    built();
    let s = Licensed::start();
    let settings = serde_json::json!({
        "servers": [s.url()],
        "vendorPublicKey": s.vendor_public,
        "handshakeCode": SHOP,
        "product": PRODUCT,
    });
    // Two origins, as two sites would be: the same page and settings on each.
    let allowed = static_site(settings.to_string());
    let elsewhere = static_site(settings.to_string());
    let driver = crate::browser::start_driver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = headless(&driver).await;

        c.goto(&format!("http://{ALLOWED_HOST}:{allowed}/"))
            .await
            .unwrap();
        let state = attribute(&c, "license", "data-state").await;
        let shown = text_of(&c, "license").await;
        assert_eq!(state, "authorized", "{shown}");
        assert!(shown.starts_with("valid until "), "{shown}");
        for _ in 0..3 {
            click(&c, "scan").await;
        }
        click(&c, "send").await;
        assert_eq!(attribute(&c, "usage", "data-acknowledged").await, "1");
        // The grant and the device id are kept in the page's storage, by vendor key and product.
        let keys = c
            .execute("return Object.keys(localStorage).sort()", Vec::new())
            .await
            .unwrap();
        let prefix = format!("tally/{}/{PRODUCT}/", s.vendor_public);
        for entry in ["device-id", "grant", "session", "usage"] {
            assert!(
                keys.as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k.as_str() == Some(&format!("{prefix}{entry}"))),
                "no {entry} in localStorage: {keys}"
            );
        }

        // The same page on another site, with the shop's code: the server refuses it.
        c.goto(&format!("http://{OTHER_HOST}:{elsewhere}/"))
            .await
            .unwrap();
        let state = attribute(&c, "license", "data-state").await;
        let shown = text_of(&c, "license").await;
        assert_eq!(state, "refused", "{shown}");
        assert_eq!(
            attribute(&c, "license", "data-code").await,
            "118",
            "{shown}"
        );
        assert!(shown.starts_with("118 origin_not_allowed: "), "{shown}");
        c.close().await.unwrap();
    });
    assert_eq!(s.usage(SHOP, "scan"), 3);
    assert_eq!(s.usage(PARTNER, "scan"), 0);
}
