//! A real `tally serve` as an operator runs it: secrets sealed at rest and files private to their
//! owner, a portal password reset on the server's machine, a data directory that cannot be
//! written, half-sent requests, and variables of other subcommands in the environment.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{command, fails_with};
use crate::processes::{Server, free_port, serve_demo};

const SMTP_PASSWORD: &str = "smtp-password-never-in-clear";
const WEBHOOK_SECRET: &str = "webhook-secret-never-in-clear";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn token(d: &Path) -> String {
    std::fs::read_to_string(d.join("data/admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `GET`/`PUT` on the admin API; the answer's text.
fn admin_api(d: &Path, listen: &str, method: &str, path: &str, body: Option<&str>) -> String {
    let url = format!("http://{listen}/api/admin{path}");
    let auth = format!("Bearer {}", token(d));
    let agent = agent();
    let mut resp = match body {
        Some(b) => agent
            .put(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(b.as_bytes())
            .unwrap(),
        None => {
            assert_eq!(method, "GET");
            agent
                .get(&url)
                .header("Authorization", &auth)
                .call()
                .unwrap()
        }
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{method} {path}: {text}");
    text
}

/// The stored settings table, read as a copy of the database would be.
fn stored_setting(d: &Path, key: &str) -> Option<String> {
    let db = rusqlite::Connection::open(d.join("data/tally.db")).unwrap();
    db.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .ok()
}

/// Every byte under `dir` (database, its WAL, backups), to look for a secret in clear.
fn any_file_contains(dir: &Path, needle: &str) -> Option<String> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if let Some(found) = any_file_contains(&path, needle) {
                return Some(found);
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            return Some(path.display().to_string());
        }
    }
    None
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starts the demo server with its log in `d/server.log`.
fn serve_demo_logged(d: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("server.log"))
        .unwrap();
    let mut cmd = command(
        d,
        &["serve", "--demo", "--listen", listen, "--data-dir", "data"],
    );
    cmd.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    let server = Server(cmd.spawn().unwrap());
    crate::processes::wait_until_serving(listen, || d.join("data/demo/client.toml").exists());
    server
}

#[test]
fn secrets_are_sealed_at_rest_never_shown_and_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve_demo_logged(d, &listen, &[("RUST_LOG", "debug")]);

    let mut set_email = command(
        d,
        &[
            "admin",
            "--server",
            &format!("http://{listen}"),
            "--data-dir",
            "data",
            "set-email",
            "--host",
            "127.0.0.1",
            "--port",
            "9",
            "--tls",
            "none",
            "--sender",
            "tally@example.com",
            "--username",
            "tally",
            "--to",
            "ops@example.com",
        ],
    );
    set_email.env("TALLY_SMTP_PASSWORD", SMTP_PASSWORD);
    crate::cli::succeeds(&mut set_email);
    let hooks = format!(r#"{{"urls": ["http://127.0.0.1:9/hook"], "secret": "{WEBHOOK_SECRET}"}}"#);
    admin_api(d, &listen, "PUT", "/webhooks", Some(&hooks));

    // The API shows that secrets are saved, never what they are.
    let email = admin_api(d, &listen, "GET", "/email", None);
    assert!(email.contains("\"password\":\"********\""), "{email}");
    let webhooks = admin_api(d, &listen, "GET", "/webhooks", None);
    assert!(webhooks.contains("\"secret\":\"********\""), "{webhooks}");
    assert!(webhooks.contains("http://127.0.0.1:9/hook"), "{webhooks}");
    // The test email uses the sealed password (and fails: nothing listens on port 9).
    let _ = agent()
        .post(&format!("http://{listen}/api/admin/email/test"))
        .header("Authorization", &format!("Bearer {}", token(d)))
        .send(&b""[..])
        .unwrap();
    server.stop();

    // A copy of the data directory does not give the secrets away.
    for key in ["alerts.email", "alerts.webhooks"] {
        let stored = stored_setting(d, key).unwrap();
        assert!(stored.starts_with("tally-sealed/1:"), "{key}: {stored}");
    }
    for secret in [SMTP_PASSWORD, WEBHOOK_SECRET] {
        assert_eq!(any_file_contains(&d.join("data"), secret), None, "{secret}");
        let log = std::fs::read_to_string(d.join("server.log")).unwrap();
        assert!(!log.contains(secret), "the log shows {secret}");
    }
    #[cfg(unix)]
    {
        let data = d.join("data");
        assert_eq!(mode(&data), 0o700);
        for file in [
            "tally.db",
            "identity.json",
            "admin-token",
            "secret-key",
            "lock",
        ] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}");
        }
    }

    // A secret an older version saved in clear is sealed at the next start and still works.
    let clear = format!(r#"{{"urls":["http://127.0.0.1:9/old"],"secret":"{WEBHOOK_SECRET}"}}"#);
    {
        let db = rusqlite::Connection::open(d.join("data/tally.db")).unwrap();
        db.execute(
            "UPDATE settings SET value = ?1 WHERE key = 'alerts.webhooks'",
            [&clear],
        )
        .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // As an older version left it: readable by everyone.
        for (path, mode) in [(d.join("data"), 0o755), (d.join("data/tally.db"), 0o644)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let server = serve_demo_logged(d, &listen, &[]);
    let webhooks = admin_api(d, &listen, "GET", "/webhooks", None);
    assert!(webhooks.contains("http://127.0.0.1:9/old"), "{webhooks}");
    server.stop();
    let stored = stored_setting(d, "alerts.webhooks").unwrap();
    assert!(stored.starts_with("tally-sealed/1:"), "{stored}");
    assert!(!stored.contains(WEBHOOK_SECRET));
    #[cfg(unix)]
    {
        assert_eq!(mode(&d.join("data")), 0o700);
        assert_eq!(mode(&d.join("data/tally.db")), 0o600);
    }
}

/// `tally admin reset-password --data-dir data` with `password` on its standard input.
fn reset_password(d: &Path, password: &str) -> std::process::Output {
    let mut cmd = command(d, &["admin", "reset-password", "--data-dir", "data"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Signs in to the portal; the session cookie on success.
fn sign_in(listen: &str, password: &str) -> Option<String> {
    let body = format!(
        "password={}",
        password
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let resp = agent()
        .post(&format!("http://{listen}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .unwrap();
    if resp.status().as_u16() != 303 {
        return None;
    }
    resp.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

/// Whether the session `cookie` still opens the portal's home page.
fn signed_in(listen: &str, cookie: &str) -> bool {
    let resp = agent()
        .get(&format!("http://{listen}/"))
        .header("Cookie", cookie)
        .call()
        .unwrap();
    resp.status().as_u16() == 200
}

#[test]
fn the_owner_resets_the_portal_password_on_the_server_and_every_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve_demo(d, &listen, &[]);

    let out = reset_password(d, "first password 1");
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("every portal session was signed out"),
        "{said}"
    );
    let session = sign_in(&listen, "first password 1").expect("signed in");
    assert!(signed_in(&listen, &session));

    // The running server takes the new password at once and forgets every session.
    let out = reset_password(d, "second password 2");
    assert!(out.status.success(), "{out:?}");
    assert!(!signed_in(&listen, &session), "the old session still works");
    assert_eq!(sign_in(&listen, "first password 1"), None);
    let session = sign_in(&listen, "second password 2").expect("signed in");
    assert!(signed_in(&listen, &session));

    // The portal's rules hold; nothing changes when they are broken.
    let out = reset_password(d, "short");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("at least 10 characters"), "{said}");
    assert!(signed_in(&listen, &session));

    // Only on the server's data directory: a directory without a server is refused.
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    let mut elsewhere = command(d, &["admin", "reset-password", "--data-dir", "elsewhere"]);
    elsewhere.stdin(Stdio::null());
    let said = fails_with(&mut elsewhere);
    assert!(said.contains("not a Tally data directory"), "{said}");
    server.stop();
}

/// A read-only tmpfs mounted on `path` (root only), unmounted when dropped.
struct ReadOnlyMount(std::path::PathBuf);

impl ReadOnlyMount {
    fn try_mount(path: &Path) -> Option<Self> {
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                "ro,size=1m",
                "tally-test",
                path.to_str()?,
            ])
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(path.to_owned()))
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(unix)]
#[test]
fn a_data_directory_that_cannot_be_written_stops_the_server_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("read-only");
    std::fs::create_dir(&data).unwrap();
    // Permission bits stop an ordinary user; root writes through them, so for root the
    // directory becomes a read-only mount.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
    let root_writes = std::fs::File::create(data.join("probe")).is_ok();
    let _mount = if root_writes {
        match ReadOnlyMount::try_mount(&data) {
            Some(m) => Some(m),
            None => {
                eprintln!(
                    "skipped: running as root without the right to mount, so no directory is read-only here (the message is tested in tally-server's data_dir tests)"
                );
                return;
            }
        }
    } else {
        None
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let said = fails_with(&mut command(
        d,
        &[
            "serve",
            "--demo",
            "--listen",
            &listen,
            "--data-dir",
            "read-only",
        ],
    ));
    assert!(
        said.contains("the data directory read-only cannot be written"),
        "{said}"
    );
    assert!(said.contains("--data-dir"), "{said}");
    assert!(TcpStream::connect(&listen).is_err(), "the server listens");
}

#[test]
fn half_sent_requests_are_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve_demo(d, &listen, &[("TALLY_HEADER_TIMEOUT_SECONDS", "2")]);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&listen).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: tally\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect();
    // Meanwhile a whole request is answered.
    let health = agent()
        .get(&format!("http://{listen}/healthz"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(health, "ok");
    for s in &mut slow {
        let mut rest = Vec::new();
        // Closed by the server: the read ends (a timeout of the read would be an error).
        s.read_to_end(&mut rest).unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    server.stop();
}

#[test]
fn the_server_ignores_variables_of_the_other_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    // What a shell set up for `tally admin` holds.
    let server = serve_demo(
        d,
        &listen,
        &[
            ("TALLY_SERVER", "http://tally.example.com:48080"),
            ("TALLY_SMTP_PASSWORD", "not a server setting"),
            ("TALLY_CONFIG", "tally-admin.toml"),
        ],
    );
    let health = agent()
        .get(&format!("http://{listen}/healthz"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(health, "ok");
    server.stop();
    // A misspelt server setting is still refused.
    let mut cmd = command(
        d,
        &["serve", "--demo", "--listen", &listen, "--data-dir", "data"],
    );
    cmd.env("TALLY_BACKUP_KEEPS", "3");
    let said = fails_with(&mut cmd);
    assert!(said.contains("backup_keeps"), "{said}");
}
