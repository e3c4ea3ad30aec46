//! HTTPS served by `tally serve` itself: certificate files from an internal CA, the plain HTTP
//! listener's redirect, HSTS, and the certificate replaced without a restart (SIGHUP, or the
//! files rewritten by a renewal tool), as an operator runs it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tally_crypto::fingerprint::Fingerprint;

use crate::cli::{command, fails_with};
use crate::processes::{Server, free_port, serve_demo};

/// An internal certificate authority, as a company's IT department runs one.
pub struct InternalCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub cert_der: CertificateDer<'static>,
}

impl InternalCa {
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Example Corp internal CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for the loopback names, written as `cert.pem` and `key.pem` into
    /// `dir` (the key first, as a renewal tool might); returns its fingerprint.
    pub fn issue_into(&self, dir: &Path) -> Fingerprint {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        Fingerprint::of_der(cert.der())
    }
}

/// `GET path` over HTTPS to `addr`, trusting only `ca`: the served certificate's fingerprint and
/// the whole answer.
fn https_get(addr: &str, ca: &CertificateDer<'static>, path: &str) -> (Fingerprint, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    // The server closes without close_notify on some paths; what was read is the answer.
    let _ = tls.read_to_string(&mut answer);
    let leaf = tls.conn.peer_certificates().unwrap()[0].clone();
    (Fingerprint::of_der(&leaf), answer)
}

/// `GET path` in plain HTTP.
fn http_get(addr: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// Waits until the server on `addr` presents the certificate `expected`.
fn until_served(addr: &str, ca: &CertificateDer<'static>, expected: Fingerprint, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (served, _) = https_get(addr, ca, "/healthz");
        if served == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: still serving {served}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tls_env(tls_dir: &Path, plain: &str) -> Vec<(&'static str, String)> {
    let path = |f: &str| -> String { tls_dir.join(f).to_str().unwrap().to_owned() };
    vec![
        ("TALLY_TLS", "files".to_owned()),
        ("TALLY_TLS_CERT_FILE", path("cert.pem")),
        ("TALLY_TLS_KEY_FILE", path("key.pem")),
        ("TALLY_HTTP_LISTEN", plain.to_owned()),
    ]
}

fn start(d: &Path, listen: &str, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serve_demo(d, listen, &env)
}

#[test]
fn serves_https_with_files_redirects_plain_http_and_swaps_the_certificate_without_a_restart() {
    let d = tempfile::tempdir().unwrap();
    let tls_dir: PathBuf = d.path().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let ca = InternalCa::new();
    let first = ca.issue_into(&tls_dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let plain = format!("127.0.0.1:{}", free_port());
    let server = start(d.path(), &listen, &tls_env(&tls_dir, &plain));

    let (served, answer) = https_get(&listen, &ca.cert_der, "/healthz");
    assert_eq!(served, first);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );

    // Plain HTTP is sent to the same page over HTTPS, method kept.
    let redirect = http_get(&plain, "/statistics?feature=scan");
    assert!(redirect.starts_with("HTTP/1.1 308"), "{redirect}");
    let port = listen.rsplit(':').next().unwrap();
    assert!(
        redirect.to_lowercase().contains(&format!(
            "location: https://127.0.0.1:{port}/statistics?feature=scan"
        )),
        "{redirect}"
    );
    assert!(
        !redirect
            .to_lowercase()
            .contains("strict-transport-security")
    );

    // A renewed certificate and SIGHUP: served at once, no restart.
    let second = ca.issue_into(&tls_dir);
    let pid = server.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    until_served(&listen, &ca.cert_der, second, "after SIGHUP");

    // A renewal tool that only rewrites the files: noticed without a signal.
    let third = ca.issue_into(&tls_dir);
    until_served(&listen, &ca.cert_der, third, "after the files changed");
    server.stop();
}

#[test]
fn a_certificate_that_cannot_be_served_stops_the_start_with_its_file_named() {
    let d = tempfile::tempdir().unwrap();
    let tls_dir = d.path().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let ca = InternalCa::new();
    ca.issue_into(&tls_dir);
    // The key of another certificate, as a botched renewal leaves it.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    ca.issue_into(&other);
    std::fs::copy(other.join("key.pem"), tls_dir.join("key.pem")).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut cmd = command(
        d.path(),
        &["serve", "--demo", "--listen", &listen, "--data-dir", "data"],
    );
    cmd.env("TALLY_TLS", "files")
        .env("TALLY_TLS_CERT_FILE", tls_dir.join("cert.pem"))
        .env("TALLY_TLS_KEY_FILE", tls_dir.join("key.pem"));
    let stderr = fails_with(&mut cmd);
    assert!(stderr.contains("cannot serve HTTPS"), "{stderr}");
    assert!(
        stderr.contains("does not belong to the certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("key.pem"), "{stderr}");
}
