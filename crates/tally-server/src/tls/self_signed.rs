//! A self-signed certificate made at first start (`tls = "self-signed"`) and kept in
//! `<data_dir>/tls/`, so that its fingerprint, which clients may pin, stays the same across
//! restarts. Removing the two files makes a new one at the next start.

use std::net::SocketAddr;
use std::path::Path;

use super::{CertificateFiles, TlsError};

const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";
/// Twenty years: a self-signed certificate is trusted by its pin or by hand, not by its dates.
const VALID_DAYS: i64 = 20 * 365;

/// The names the certificate is made for: the configured ones, or `localhost`, this machine's
/// host name, the loopback addresses and the address `listen` names.
pub fn names(configured: &[String], listen: SocketAddr) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut names = vec!["localhost".to_owned()];
    if let Some(host) = hostname::get().ok().and_then(|h| h.into_string().ok())
        && !host.is_empty()
        && host != "localhost"
    {
        names.push(host);
    }
    names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
    let ip = listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names
}

/// The certificate files in `<data_dir>/tls/`, made for `names` if they are not there yet.
pub fn ensure(data_dir: &Path, names: &[String]) -> Result<CertificateFiles, TlsError> {
    let dir = super::self_signed_dir(data_dir);
    let files = CertificateFiles {
        cert: dir.join(CERT_FILE),
        key: dir.join(KEY_FILE),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Write { path, source }
    };
    make_private_dir(&dir).map_err(write_error(&dir))?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALID_DAYS);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Tally server {}", names.first().map_or("", String::as_str)),
    );
    let cert = params.self_signed(&key)?;
    // The key first: a certificate without its key would be kept and never work.
    crate::identity::write_private(&files.key, key.serialize_pem().as_bytes())
        .map_err(write_error(&files.key))?;
    crate::identity::write_private(&files.cert, cert.pem().as_bytes())
        .map_err(write_error(&files.cert))?;
    tracing::info!(path = %files.cert.display(), names = ?names, "made a self-signed TLS certificate");
    Ok(files)
}

fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::data_dir::make_private(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let names = names(&[], "0.0.0.0:48080".parse().unwrap());
        assert!(names.contains(&"localhost".to_owned()));
        assert!(names.contains(&"127.0.0.1".to_owned()));
        let files = ensure(dir.path(), &names).unwrap();
        let first = super::super::certificate::load(&files).unwrap().fingerprint;
        let again = ensure(dir.path(), &names).unwrap();
        assert_eq!(
            super::super::certificate::load(&again).unwrap().fingerprint,
            first
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is the owner's only: {mode:o}");
        }
    }

    #[test]
    fn configured_names_replace_the_defaults() {
        let configured = vec!["licenses.example.com".to_owned()];
        assert_eq!(
            names(&configured, "10.0.0.5:443".parse().unwrap()),
            configured
        );
        assert!(names(&[], "10.0.0.5:443".parse().unwrap()).contains(&"10.0.0.5".to_owned()));
    }
}
