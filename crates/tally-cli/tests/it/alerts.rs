//! Alerts through real channels: an SMTP server on loopback (Debian's python3-aiosmtpd), a webhook
//! receiver on loopback, and internal errors provoked in a real database.
//!
//! The SMTP tests are reported as ignored, with the reason, when the build found no aiosmtpd
//! (`has_aiosmtpd`, see `build.rs`); under CI they always run and fail if it is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use tally_proto::admin::AlertView;

use crate::common::*;
use crate::e2e::{client, config};

/// Debian's Python, where `apt-get install python3-aiosmtpd` puts the SMTP server (`/usr/bin`
/// unless `TALLY_TEST_BIN_DIR` says otherwise when building, see `build.rs`).
const PYTHON: &str = concat!(env!("TALLY_TEST_BIN_DIR"), "/python3");

/// A real SMTP server storing what it receives in a Maildir.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts the server; fails the test when aiosmtpd is missing (the test runs because the
    /// build found it, or under CI, where `.ci/run` installs it).
    fn start() -> SmtpSink {
        let available = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            available,
            "{PYTHON} cannot import aiosmtpd: apt-get install python3-aiosmtpd (.ci/run does it)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(PYTHON)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "the SMTP server");
        SmtpSink {
            child,
            port,
            maildir,
        }
    }

    /// Every message received so far (raw RFC 5322 text), oldest first.
    fn messages(&self) -> Vec<String> {
        let dir: PathBuf = self.maildir.path().join("mail/new");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.messages();
            if m.len() >= count {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} messages, got {}",
                m.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn configure_email(s: &TestServer, port: u16) {
    let settings = json!({
        "host": "127.0.0.1", "port": port, "tls": "none", "sender": "Tally <tally@example.test>",
        "to": ["admin@example.test"], "cc": ["ops@example.test"], "bcc": ["audit@example.test"],
    });
    let (status, text) = s.admin(
        "PUT_JSON",
        "/email",
        Some(("application/json", serde_json::to_vec(&settings).unwrap())),
    );
    assert_eq!(status, 200, "{text}");
}

/// Saves webhook `urls` signed with `secret` through the admin API.
fn save_webhooks(s: &TestServer, urls: &[&str], secret: &str) {
    let settings = json!({"urls": urls, "secret": secret});
    let (status, text) = s.admin(
        "PUT_JSON",
        "/webhooks",
        Some(("application/json", serde_json::to_vec(&settings).unwrap())),
    );
    assert_eq!(status, 200, "{text}");
}

fn evaluate(s: &TestServer) -> Option<i64> {
    let v: serde_json::Value = s.admin_ok(
        "POST",
        "/alerts/evaluate",
        Some(("application/json", Vec::new())),
    );
    v["alert_id"].as_i64()
}

/// The alert history once `done` holds for it (deliveries run in the background).
fn history_when(s: &TestServer, what: &str, done: impl Fn(&[AlertView]) -> bool) -> Vec<AlertView> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let history: Vec<AlertView> = s.admin_ok("GET", "/alerts", None);
        if done(&history) {
            return history;
        }
        assert!(Instant::now() < deadline, "{what}: {history:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An SMTP server that accepts connections and never says a word (not even its greeting),
/// like a mail host behind a broken firewall or an overloaded relay.
fn silent_smtp_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    port
}

#[test]
#[cfg_attr(
    not(has_aiosmtpd),
    ignore = "needs python3-aiosmtpd: apt-get install python3-aiosmtpd"
)]
fn a_test_email_goes_through_a_real_smtp_exchange() {
    let sink = SmtpSink::start();
    let s = TestServer::start();
    let (status, text) = s.admin(
        "POST",
        "/email/test",
        Some(("application/json", Vec::new())),
    );
    assert_eq!(status, 400, "not configured yet: {text}");
    configure_email(&s, sink.port);
    let _: serde_json::Value = s.admin_ok(
        "POST",
        "/email/test",
        Some(("application/json", Vec::new())),
    );
    let mail = &sink.wait_for(1)[0];
    assert!(mail.contains("Subject: Tally test email"), "{mail}");
    assert!(
        mail.contains("To: admin@example.test") && mail.contains("Cc: ops@example.test"),
        "{mail}"
    );
    // The SMTP server records the envelope recipients: the Bcc address got the message, but
    // no header shows it.
    let envelope = mail
        .lines()
        .find(|l| l.starts_with("X-RcptTo:"))
        .unwrap_or("");
    assert!(envelope.contains("audit@example.test"), "{mail}");
    assert!(!mail.lines().any(|l| l.starts_with("Bcc:")), "{mail}");
    assert!(
        mail.contains("multipart/alternative")
            && mail.contains("text/plain")
            && mail.contains("text/html"),
        "{mail}"
    );

    // Misconfigured: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    configure_email(&s, closed);
    let (status, err) = s.admin_err(
        "POST",
        "/email/test",
        Some(("application/json", Vec::new())),
    );
    assert_eq!((status, err.name.as_str()), (502, "email_failed"));
    assert!(
        err.message.contains(&format!("127.0.0.1:{closed}")),
        "{}",
        err.message
    );
}

#[test]
fn bad_email_settings_are_refused() {
    let s = TestServer::start();
    for (body, needle) in [
        (
            json!({"host": "", "port": 25, "sender": "a@b.c", "to": ["x@y.z"]}),
            "host",
        ),
        (
            json!({"host": "h", "port": 25, "sender": "not an address", "to": ["x@y.z"]}),
            "sender",
        ),
        (
            json!({"host": "h", "port": 25, "sender": "a@b.c", "to": []}),
            "to",
        ),
        (
            json!({"host": "h", "port": 25, "sender": "a@b.c", "to": ["x@y.z"], "username": "u"}),
            "password",
        ),
    ] {
        let (status, text) = s.admin(
            "PUT_JSON",
            "/email",
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        );
        assert_eq!(status, 400, "{body}");
        assert!(text.contains(needle), "{text}");
    }
}

#[test]
#[cfg_attr(
    not(has_aiosmtpd),
    ignore = "needs python3-aiosmtpd: apt-get install python3-aiosmtpd"
)]
fn thresholds_alert_once_each_and_survive_a_restart() {
    let sink = SmtpSink::start();
    let s = TestServer::start();
    configure_email(&s, sink.port);
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    assert_eq!(evaluate(&s), None, "nothing to say yet");
    for i in 0..3 {
        client(&s, config(&s, &format!("d{i}")))
            .authorize()
            .unwrap();
    }
    assert!(evaluate(&s).is_some());
    assert_eq!(evaluate(&s), None, "a threshold alerts once");
    client(&s, config(&s, "d3")).authorize().unwrap();
    client(&s, config(&s, "d4")).authorize().unwrap();
    client(&s, config(&s, "d5")).authorize().unwrap(); // 6 of 5: full and in grace
    // A failed authorization on the code: 1 of 7 in the last hour.
    let mut wrong = config(&s, "wrong-module");
    wrong.modules = vec!["ocr".into()];
    assert!(client(&s, wrong).authorize().is_err());
    assert!(evaluate(&s).is_some());

    let mails = sink.wait_for(2);
    assert!(mails[0].contains("usage reached 60 %"), "{}", mails[0]);
    assert!(
        mails[1].contains("usage reached 100 %") && mails[1].contains("entered its grace"),
        "{}",
        mails[1]
    );
    assert!(
        mails[1].contains("Handshake code acme-default: 10 % or more"),
        "{}",
        mails[1]
    );
    assert!(
        mails[1].contains("Subject: Tally: 3 license alerts"),
        "every condition in one message"
    );

    // Restart: the levels are in the store, nothing is sent again.
    let (data, vendor) = s.stop();
    let s = TestServer::start_in(data, vendor, "machine-1");
    configure_email(&s, sink.port);
    assert_eq!(evaluate(&s), None);
    s.clock.set(T0 + 365 * DAY - DAY * 6);
    assert!(evaluate(&s).is_some(), "expiry within 7 days");
    let mails = sink.wait_for(3);
    assert!(mails[2].contains("expires within 7 days"), "{}", mails[2]);
    let history = history_when(&s, "every email recorded as sent", |h| {
        h.iter().all(|a| a.email == "sent")
    });
    assert_eq!(history.len(), 3);
    assert!(
        history.iter().all(|a| a.attempts.len() == 1),
        "one attempt each: {history:?}"
    );
}

/// A webhook receiver: answers `status` to each request and passes on (signature, body).
pub fn receiver(status: u16) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signature) = (0usize, String::new());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-tally-signature:") {
                    signature = line["x-tally-signature:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            if tx.send((signature, body)).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

#[test]
fn webhooks_receive_signed_events_and_failures_are_retried_for_a_day() {
    let s = TestServer::start();
    let (good, received) = receiver(200);
    let (bad, refused) = receiver(500);
    let secret = "a webhook secret of some length";
    save_webhooks(&s, &[&good, &bad], secret);
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 1, 0)]));
    client(&s, config(&s, "a")).authorize().unwrap();
    let id = evaluate(&s).unwrap();

    let (signature, body) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        signature,
        tally_server::alerts::webhook::signature(secret, &body)
    );
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "tally.alert");
    assert_eq!(event["alert_id"], id);
    assert_eq!(event["conditions"][0]["id"], "L-1-1");
    assert_eq!(event["conditions"][0]["kind"], "usage");
    refused.recv_timeout(Duration::from_secs(10)).unwrap();
    let history = history_when(&s, "the failure recorded", |h| {
        h[0].webhooks.contains("next attempt")
    });
    assert_eq!(history[0].email, "not configured");
    assert!(
        history[0].webhooks.contains(&bad) && history[0].webhooks.contains("HTTP 500"),
        "{}",
        history[0].webhooks
    );
    assert!(
        !history[0].webhooks.contains(&good),
        "the good one was sent"
    );
    assert!(
        refused.recv_timeout(Duration::from_millis(500)).is_err(),
        "not retried before its time"
    );

    // A minute later the failed one is tried again (the next evaluation, or the queue's own
    // round, picks it up), and only it.
    s.clock.advance(61);
    evaluate(&s);
    let (_, again) = refused.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(again, body, "the same event");
    assert!(received.recv_timeout(Duration::from_millis(500)).is_err());
    let history = history_when(&s, "the second attempt recorded", |h| {
        h[0].attempts.len() == 3
    });
    let to = |url: &str| -> Vec<&str> {
        history[0]
            .attempts
            .iter()
            .filter(|a| a.channel == url)
            .map(|a| a.outcome.as_str())
            .collect()
    };
    assert_eq!(to(&good), ["sent"]);
    assert_eq!(to(&bad).len(), 2);
    assert!(to(&bad).iter().all(|o| o.contains("HTTP 500")));

    // A day on, the last attempt fails and the delivery is given up.
    s.clock.advance(DAY - 61 - 60);
    evaluate(&s);
    refused.recv_timeout(Duration::from_secs(20)).unwrap();
    let history = history_when(&s, "given up", |h| h[0].webhooks.contains("given up"));
    assert!(
        history[0].webhooks.contains("after 3 attempts"),
        "{}",
        history[0].webhooks
    );
    s.clock.advance(3600);
    evaluate(&s);
    assert!(
        refused.recv_timeout(Duration::from_secs(2)).is_err(),
        "never tried again"
    );
}

#[test]
fn a_silent_smtp_server_fails_the_test_email_within_the_deadline_and_alerts_go_on() {
    let s = TestServer::start_with(|settings| settings.delivery_timeout_seconds = 2);
    let silent = silent_smtp_server();
    configure_email(&s, silent);
    let started = Instant::now();
    let (status, err) = s.admin_err(
        "POST",
        "/email/test",
        Some(("application/json", Vec::new())),
    );
    let took = started.elapsed();
    assert_eq!((status, err.name.as_str()), (502, "email_failed"));
    assert!(
        err.message.contains(&format!("127.0.0.1:{silent}")) && err.message.contains("within 2 s"),
        "{}",
        err.message
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "the deadline decides: {took:?}"
    );

    // An alert while the mail server hangs: the evaluation answers at once, the webhook gets
    // the event at once, and the email is recorded as failed and kept for a retry.
    let (hook, received) = receiver(200);
    save_webhooks(&s, &[&hook], "a webhook secret of some length");
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 1, 0)]));
    client(&s, config(&s, "a")).authorize().unwrap();
    let started = Instant::now();
    let id = evaluate(&s).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the evaluation does not wait for the mail server: {:?}",
        started.elapsed()
    );
    received.recv_timeout(Duration::from_secs(2)).unwrap();
    let history = history_when(&s, "the email attempt recorded", |h| {
        h[0].email != "pending"
    });
    assert_eq!(history[0].id, id);
    assert_eq!(history[0].webhooks, "sent");
    assert!(
        history[0].email.contains("within 2 s") && history[0].email.contains("next attempt"),
        "{}",
        history[0].email
    );

    // Alerts keep coming while that email waits for its retry: a failed authorization.
    let mut wrong = config(&s, "wrong-module");
    wrong.modules = vec!["ocr".into()];
    assert!(client(&s, wrong).authorize().is_err());
    let started = Instant::now();
    assert!(evaluate(&s).is_some(), "half the authorizations failed");
    assert!(started.elapsed() < Duration::from_secs(2));
    let (_, event) = received.recv_timeout(Duration::from_secs(2)).unwrap();
    let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
    assert_eq!(event["conditions"][0]["kind"], "failures");
}

#[test]
#[cfg_attr(
    not(has_aiosmtpd),
    ignore = "needs python3-aiosmtpd: apt-get install python3-aiosmtpd"
)]
fn an_alert_whose_email_failed_is_sent_when_the_mail_server_is_back() {
    let s = TestServer::start();
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    configure_email(&s, down);
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 1, 0)]));
    client(&s, config(&s, "a")).authorize().unwrap();
    evaluate(&s).unwrap();
    history_when(&s, "the failure recorded", |h| h[0].attempts.len() == 1);

    let sink = SmtpSink::start();
    configure_email(&s, sink.port);
    s.clock.advance(30);
    evaluate(&s);
    std::thread::sleep(Duration::from_secs(1));
    assert!(sink.messages().is_empty(), "not before the retry is due");
    s.clock.advance(31);
    evaluate(&s);
    let mail = &sink.wait_for(1)[0];
    assert!(mail.contains("usage reached 100 %"), "{mail}");
    let history = history_when(&s, "sent at the second attempt", |h| h[0].email == "sent");
    let outcomes: Vec<&str> = history[0]
        .attempts
        .iter()
        .map(|a| a.outcome.as_str())
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes[0].contains(&format!("127.0.0.1:{down}")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], "sent");
    assert!(history[0].attempts.iter().all(|a| a.channel == "email"));
    assert_eq!(history[0].attempts[1].at, history[0].attempts[0].at + 61);
    let page = crate::portal::set_up(&s).get("/alerts").body;
    assert!(page.contains("Delivery attempts (2)"), "{page}");
}

#[test]
#[cfg_attr(
    not(has_aiosmtpd),
    ignore = "needs python3-aiosmtpd: apt-get install python3-aiosmtpd"
)]
fn internal_errors_reach_the_admin_quickly_and_a_storm_sends_one_message() {
    let sink = SmtpSink::start();
    let s = TestServer::start();
    configure_email(&s, sink.port);
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    // Break the database under the running server: every report write now fails.
    let broken = rusqlite_free_break(&s);
    assert!(
        broken.status.success(),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    let device = client(&s, config(&s, "storm"));
    device.authorize().unwrap_err();
    for _ in 0..20 {
        let _ = client(&s, config(&s, "storm")).authorize();
    }
    let started = Instant::now();
    let mails = sink.wait_for(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(mails[0].contains("internal error"), "{}", mails[0]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        sink.messages().len(),
        1,
        "a storm gives one notice per interval"
    );
}

/// Renames the devices table away through a second connection, so admissions fail inside the
/// server like a broken disk would make them fail.
fn rusqlite_free_break(s: &TestServer) -> std::process::Output {
    Command::new(PYTHON)
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('ALTER TABLE devices RENAME TO devices_gone'); c.commit()"])
        .arg(s.data.path().join("tally.db"))
        .output()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(has_aiosmtpd),
    ignore = "needs python3-aiosmtpd: apt-get install python3-aiosmtpd"
)]
fn the_portal_saves_email_settings_and_sends_a_test_email() {
    let sink = SmtpSink::start();
    let s = TestServer::start();
    let mut v = crate::portal::set_up(&s);
    let csrf = v.csrf("/email");
    let port = sink.port.to_string();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("host", "127.0.0.1"),
        ("port", "not a port"),
        ("tls", "none"),
        ("sender", "Tally <tally@example.test>"),
        ("to", "admin@example.test"),
        ("action", "test"),
    ];
    let p = v.post("/email", &fields, None);
    assert!(p.body.contains("Port: a number"), "{}", p.body);
    assert!(
        p.body.contains("admin@example.test"),
        "what was typed is kept"
    );
    fields[2] = ("port", port.as_str());
    let p = v.post("/email", &fields, None);
    assert_eq!(
        p.location.as_deref(),
        Some("/email?notice=tested"),
        "{}",
        p.body
    );
    assert!(sink.wait_for(1)[0].contains("Subject: Tally test email"));
    assert!(v.get("/alerts").body.contains("No alert yet"));
}
