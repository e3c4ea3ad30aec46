//! The portal over plain HTTP: who may get in, CSRF, sessions, and forms that keep their input.

use std::time::Duration;

use crate::common::*;

/// A browser-like HTTP client: keeps one session cookie, follows no redirects.
pub struct Visitor {
    base: String,
    cookie: Option<String>,
    agent: ureq::Agent,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    set_cookie: Option<String>,
    pub cache_control: Option<String>,
    pub body: String,
}

impl Visitor {
    fn new(s: &TestServer) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Self {
            base: s.url.clone(),
            cookie: None,
            agent,
        }
    }

    fn finish(&mut self, mut resp: ureq::http::Response<ureq::Body>) -> Page {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let set_cookie = header("set-cookie");
        let location = header("location");
        if let Some(c) = &set_cookie {
            let pair = c.split(';').next().unwrap_or("").to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        Page {
            status: resp.status().as_u16(),
            location,
            set_cookie,
            cache_control: header("cache-control"),
            body: resp.body_mut().read_to_string().unwrap(),
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.call().unwrap();
        self.finish(resp)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let resp = req.send(body.as_bytes()).unwrap();
        self.finish(resp)
    }

    /// Posts `file` as the `file` field of a multipart form, as a browser uploads one.
    pub fn upload(&mut self, path: &str, csrf: &str, file: &[u8]) -> Page {
        let boundary = "tally-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.license\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = self.agent.post(&format!("{}{path}", self.base)).header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send(&body[..]).unwrap();
        self.finish(resp)
    }

    /// The CSRF token of the page at `path`.
    pub fn csrf(&mut self, path: &str) -> String {
        let body = self.get(path).body;
        let at = body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        body[at..at + 32].to_owned()
    }
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const PASSWORD: &str = "a long portal password";

pub fn set_up(s: &TestServer) -> Visitor {
    let mut v = Visitor::new(s);
    let p = v.post(
        "/setup",
        &[
            ("token", &s.state.setup_token),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
        None,
    );
    assert_eq!(p.status, 303, "{}", p.body);
    v
}

#[test]
fn the_first_visitor_needs_the_setup_token() {
    let s = TestServer::start();
    let mut v = Visitor::new(&s);
    assert_eq!(v.get("/").location.as_deref(), Some("/setup"));
    assert_eq!(v.get("/devices").location.as_deref(), Some("/setup"));
    let p = v.post(
        "/setup",
        &[
            ("token", "guess"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
        None,
    );
    assert_eq!(p.status, 200);
    assert!(p.body.contains("setup token is not the one"), "{}", p.body);
    assert!(
        p.body.contains("value=\"guess\""),
        "the typed token is kept"
    );
    assert_eq!(
        v.get("/").location.as_deref(),
        Some("/setup"),
        "nothing was set"
    );

    let p = v.post(
        "/setup",
        &[
            ("token", &s.state.setup_token),
            ("password", "short"),
            ("confirm", "short"),
        ],
        None,
    );
    assert!(p.body.contains("at least 10 characters"));

    let p = v.post(
        "/setup",
        &[
            ("token", &s.state.setup_token),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
        None,
    );
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/")));
    let cookie = p.set_cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(v.get("/").body.contains(&s.state.identity.uuid));

    // The token works once: setup is closed now, for everyone.
    let mut other = Visitor::new(&s);
    let p = other.post(
        "/setup",
        &[
            ("token", &s.state.setup_token),
            ("password", "another password!"),
            ("confirm", "another password!"),
        ],
        None,
    );
    assert_eq!(p.location.as_deref(), Some("/login"));
    assert_eq!(other.get("/").location.as_deref(), Some("/login"));
}

#[test]
fn sign_in_sign_out_and_throttling() {
    let s = TestServer::start();
    drop(set_up(&s));
    let mut v = Visitor::new(&s);
    let p = v.post("/login", &[("password", "wrong password")], None);
    assert!(p.body.contains("Wrong password"));
    let p = v.post(
        "/login",
        &[("password", PASSWORD)],
        Some("http://evil.example"),
    );
    assert!(
        p.body.contains("another site"),
        "cross-site sign-in is refused"
    );
    let p = v.post("/login", &[("password", PASSWORD)], None);
    assert_eq!(p.location.as_deref(), Some("/"));
    let devices = v.get("/devices");
    assert_eq!(devices.status, 200);
    assert_eq!(
        devices.cache_control.as_deref(),
        Some("no-store"),
        "after sign-out, Back must not show the devices from the browser's cache"
    );
    let csrf = v.csrf("/devices");
    v.post("/logout", &[("csrf", &csrf)], None);
    assert_eq!(v.get("/devices").location.as_deref(), Some("/login"));

    for _ in 0..5 {
        v.post("/login", &[("password", "wrong password")], None);
    }
    let p = v.post("/login", &[("password", PASSWORD)], None);
    assert!(
        p.body
            .contains("Too many wrong passwords from this address: retry in 60 s."),
        "a guessing address is refused: {}",
        p.body
    );
    s.clock.advance(301);
    assert_eq!(
        v.post("/login", &[("password", PASSWORD)], None).status,
        303
    );
    let audit = v.get("/audit").body;
    assert!(
        audit.contains("wrong password from 127.0.0.1"),
        "failed sign-ins name their address: {audit}"
    );
}

#[test]
fn wrong_current_passwords_on_the_account_page_are_throttled() {
    let s = TestServer::start();
    let mut v = set_up(&s);
    let csrf = v.csrf("/account");
    let change = |v: &mut Visitor, current: &str| {
        v.post(
            "/account",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("password", "a new password of some length"),
                ("confirm", "a new password of some length"),
            ],
            None,
        )
        .body
    };
    for _ in 0..5 {
        assert!(change(&mut v, "a guess").contains("The current password is wrong"));
    }
    let p = change(&mut v, PASSWORD);
    assert!(
        p.contains("Too many wrong passwords from this address"),
        "{p}"
    );
}

#[test]
fn forms_need_the_csrf_token() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let mut v = set_up(&s);
    let p = v.post(
        "/handshakes/acme-default",
        &[("csrf", "forged"), ("items", "L-1-1"), ("enabled", "")],
        None,
    );
    assert!(p.body.contains("form expired"), "{}", p.body);
    let csrf = v.csrf("/handshakes/acme-default");
    let p = v.post(
        "/handshakes/acme-default",
        &[("csrf", &csrf), ("items", "L-1-1"), ("enabled", "1")],
        Some("http://evil.example"),
    );
    assert!(p.body.contains("form expired"));
    let view: tally_proto::admin::HandshakeView =
        s.admin_ok("GET", "/handshakes/acme-default", None);
    assert!(view.enabled && !view.custom_order, "nothing changed");

    let p = v.post(
        "/handshakes/acme-default",
        &[
            ("csrf", &csrf),
            ("items", "L-1-1"),
            ("domains", "*.acme.com"),
            ("enabled", "1"),
        ],
        None,
    );
    assert_eq!(p.status, 303);
    let view: tally_proto::admin::HandshakeView =
        s.admin_ok("GET", "/handshakes/acme-default", None);
    assert_eq!(view.validation.domains, ["*.acme.com"]);
}

#[test]
fn bad_input_is_explained_and_the_input_kept() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let mut v = set_up(&s);
    let csrf = v.csrf("/handshakes");
    let p = v.post(
        "/handshakes",
        &[
            ("csrf", &csrf),
            ("code", "bad code!"),
            ("organization", "acme"),
            ("items", "L-1-1"),
            ("description", "typed text"),
        ],
        None,
    );
    assert!(p.body.contains("class=\"error\""), "{}", p.body);
    assert!(p.body.contains("value=\"bad code!\"") && p.body.contains("typed text"));
    let p = v.post(
        "/handshakes",
        &[
            ("csrf", &csrf),
            ("code", "scanners"),
            ("organization", "acme"),
            ("items", "L-1-1\nnope"),
        ],
        None,
    );
    assert!(p.body.contains("license item nope"), "{}", p.body);
    let p = v.post(
        "/handshakes",
        &[
            ("csrf", &csrf),
            ("code", "scanners"),
            ("organization", "acme"),
            ("items", "L-1-1"),
        ],
        None,
    );
    assert_eq!(
        p.location.as_deref(),
        Some("/handshakes/scanners?notice=saved")
    );
    let audit = v.get("/audit").body;
    assert!(
        audit.contains("handshake.create") && audit.contains("portal.setup"),
        "{audit}"
    );
}

#[test]
fn an_upload_over_the_limit_is_refused_with_a_sentence_that_states_it() {
    let s = TestServer::start();
    let mut v = set_up(&s);
    let form = v.get("/licenses").body;
    assert!(
        form.contains("(at most 256 KiB)"),
        "the form states the limit"
    );
    let csrf = v.csrf("/licenses");
    let p = v.upload("/licenses", &csrf, &vec![b'a'; 300 * 1024]);
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("The file is larger than 256 KiB, the most a license import takes"),
        "{}",
        p.body
    );
    let p = v.upload("/licenses", &csrf, b"not a license");
    assert!(
        p.body.contains("class=\"error\""),
        "a small bad file is judged as a license"
    );
    assert!(!p.body.contains("larger than"), "{}", p.body);
}

#[test]
fn items_added_while_the_default_order_is_ticked_are_refused_not_dropped() {
    let s = TestServer::start();
    s.import(&s.activated(
        "L-1",
        "acme",
        vec![
            per_device("L-1-1", "scanner", 5, 10),
            per_device("L-1-2", "scanner", 5, 10),
        ],
    ));
    let mut v = set_up(&s);
    let before: tally_proto::admin::HandshakeView =
        s.admin_ok("GET", "/handshakes/acme-default", None);
    assert!(!before.custom_order);
    let csrf = v.csrf("/handshakes/acme-default");
    let p = v.post(
        "/handshakes/acme-default",
        &[
            ("csrf", &csrf),
            ("items", "L-1-2"),
            ("default_order", "1"),
            ("enabled", "1"),
        ],
        None,
    );
    assert_eq!(p.status, 200, "not a redirect to \"Saved.\"");
    assert!(
        p.body.contains("Not saved") && p.body.contains("default order"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains(">L-1-2</textarea>"),
        "the typed items are kept"
    );
    let after: tally_proto::admin::HandshakeView =
        s.admin_ok("GET", "/handshakes/acme-default", None);
    assert_eq!(after.items, before.items, "nothing changed");

    // The items as shown, with the box ticked, save; unticked, the typed list is saved.
    let shown = before.items.join("\n");
    let p = v.post(
        "/handshakes/acme-default",
        &[
            ("csrf", &csrf),
            ("items", &shown),
            ("default_order", "1"),
            ("enabled", "1"),
        ],
        None,
    );
    assert_eq!(p.status, 303);
    let p = v.post(
        "/handshakes/acme-default",
        &[("csrf", &csrf), ("items", "L-1-2"), ("enabled", "1")],
        None,
    );
    assert_eq!(p.status, 303);
    let custom: tally_proto::admin::HandshakeView =
        s.admin_ok("GET", "/handshakes/acme-default", None);
    assert!(custom.custom_order);
    assert_eq!(custom.items, ["L-1-2"]);
}

#[test]
fn changing_the_password_signs_out_other_sessions() {
    let s = TestServer::start();
    let mut first = set_up(&s);
    let mut second = Visitor::new(&s);
    second.post("/login", &[("password", PASSWORD)], None);
    assert_eq!(second.get("/").status, 200);
    let csrf = first.csrf("/account");
    let p = first.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("current", "not it at all"),
            ("password", "new password 123"),
            ("confirm", "new password 123"),
        ],
        None,
    );
    assert!(p.body.contains("current password is wrong"));
    let p = first.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("password", "new password 123"),
            ("confirm", "new password 123"),
        ],
        None,
    );
    assert_eq!(p.status, 303);
    assert_eq!(second.get("/").location.as_deref(), Some("/login"));
    assert_eq!(
        first.get("/").status,
        200,
        "the changer gets a fresh session"
    );
    assert!(
        second
            .post("/login", &[("password", PASSWORD)], None)
            .body
            .contains("Wrong password")
    );
}

#[test]
fn statistics_export_csv_of_reported_usage() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let device = crate::e2e::client(&s, crate::e2e::config(&s, "csv"));
    device.authorize().unwrap();
    device.record_usage("scan", 7).unwrap();
    device.flush().unwrap();
    let mut v = set_up(&s);
    let csv = v.get("/statistics.csv?days=7").body;
    assert!(
        csv.starts_with("day,handshake_code,feature,count\n"),
        "{csv}"
    );
    assert!(csv.contains("2026-06-01,acme-default,scan,7\n"), "{csv}");
    let page = v.get("/statistics?by=hour&days=1").body;
    assert!(
        page.contains("<svg") && page.contains("2026-06-01 00h: 7"),
        "the chart shows the hour's usage"
    );
    let per_item = v.get("/statistics.csv?days=7&item=L-1-1").body;
    assert_eq!(
        per_item,
        "day,item_id,feature,count\n2026-06-01,L-1-1,scan,7\n"
    );
    let other_item = v.get("/statistics.csv?days=7&item=L-9-9").body;
    assert_eq!(other_item, "day,item_id,feature,count\n");

    // A feature named like a formula is text in a spreadsheet, quoted where CSV needs it.
    device
        .record_usage("=HYPERLINK(\"http://evil.example\",\"x\")", 1)
        .unwrap();
    device.record_usage("-2+3", 1).unwrap();
    device.flush().unwrap();
    let csv = v.get("/statistics.csv?days=7").body;
    assert!(
        csv.contains(
            "2026-06-01,acme-default,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",1\n"
        ),
        "{csv}"
    );
    assert!(csv.contains("2026-06-01,acme-default,'-2+3,1\n"), "{csv}");
    // The page's export link carries the chosen feature encoded.
    let page = v.get("/statistics?feature=a%26b%3D1&days=7").body;
    assert!(
        page.contains(
            "/statistics.csv?code=&#38;feature=a%26b%3D1&#38;days=7&#38;by=day&#38;item="
        ),
        "{page}"
    );
}

#[test]
fn the_devices_page_and_api_page_through_many_devices() {
    // 450 registered devices, written while the server is stopped.
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 500, 0)]));
    let (data, vendor) = s.stop();
    tally_store_sqlite::seed::seed_devices(
        &data.path().join("tally.db"),
        &tally_store_sqlite::seed::SeedPlan {
            devices: 450,
            handshake_codes: 3,
            now: T0,
        },
    )
    .unwrap();
    let s = TestServer::start_in(data, vendor, "machine-1");
    let mut v = set_up(&s);
    let home = v.get("/");
    assert!(home.body.contains("450"), "{}", home.body);

    let first = v.get("/devices");
    assert!(
        first.body.contains("Devices 1–200 of 450"),
        "{}",
        first.body
    );
    assert!(first.body.contains("href=\"/devices?page=2\""));
    assert!(!first.body.contains("Newer"));
    let rows = |body: &str| body.matches("<code>seed-").count();
    assert_eq!(rows(&first.body), 200);
    let last = v.get("/devices?page=3");
    assert!(
        last.body.contains("Devices 401–450 of 450"),
        "{}",
        last.body
    );
    assert_eq!(rows(&last.body), 50);
    assert!(last.body.contains("href=\"/devices?page=2\""));
    assert!(!last.body.contains("Older"));
    // A page past the end shows the last one.
    assert!(v.get("/devices?page=99").body.contains("Devices 401–450"));

    let page: Vec<tally_proto::admin::DeviceView> =
        s.admin_ok("GET", "/devices?limit=100&offset=400", None);
    assert_eq!(page.len(), 50);
    let all: Vec<tally_proto::admin::DeviceView> = s.admin_ok("GET", "/devices", None);
    assert_eq!(all.len(), 450);
    let (status, body) = s.admin("GET", "/devices?limit=many", None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_input"), "{body}");
}
