//! The certificate being served, replaced without a restart: on SIGHUP, and when the files'
//! size or modification time change (a renewal tool rewrote them). A replacement that cannot be
//! read (a key written before its certificate, a typo) is logged and the served one is kept.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tally_crypto::fingerprint::Fingerprint;

use super::certificate::{self, Loaded};
use super::{CertificateFiles, TlsError};

/// How often the files are looked at.
const POLL: Duration = Duration::from_secs(5);

/// What the files looked like when last read: a change means they were rewritten.
type Stamp = [Option<(SystemTime, u64)>; 2];

/// The served certificate, read from its files.
pub struct CertificateSlot {
    files: CertificateFiles,
    current: RwLock<Arc<Loaded>>,
    seen: Mutex<Stamp>,
}

impl CertificateSlot {
    /// Reads `files`; fails when they cannot be served.
    pub fn load(files: CertificateFiles) -> Result<Self, TlsError> {
        let seen = stamp(&files);
        let loaded = certificate::load(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(Arc::new(loaded)),
            seen: Mutex::new(seen),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The fingerprint of the certificate served now.
    pub fn fingerprint(&self) -> Fingerprint {
        self.current().fingerprint
    }

    /// Reads the files again and serves what they hold; returns its fingerprint.
    pub fn reload(&self) -> Result<Fingerprint, TlsError> {
        let seen = stamp(&self.files);
        if let Ok(mut last) = self.seen.lock() {
            *last = seen;
        }
        let loaded = Arc::new(certificate::load(&self.files)?);
        let fingerprint = loaded.fingerprint;
        match self.current.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(fingerprint)
    }

    /// Whether the files changed since they were last read.
    fn changed_on_disk(&self) -> bool {
        let now = stamp(&self.files);
        self.seen.lock().map(|last| *last != now).unwrap_or(true)
    }

    /// Reloads on SIGHUP and when the files change, for as long as the process runs.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let slot = self.clone();
        tokio::spawn(async move {
            let mut hangup = hangups();
            let mut poll = tokio::time::interval(POLL);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let why = tokio::select! {
                    Some(()) = next_hangup(&mut hangup) => "SIGHUP",
                    _ = poll.tick() => {
                        if !slot.changed_on_disk() {
                            continue;
                        }
                        "the files changed"
                    }
                };
                let before = slot.fingerprint();
                match slot.reload() {
                    Ok(now) if now == before => {
                        tracing::info!(reason = why, fingerprint = %now, "TLS certificate read again, unchanged");
                    }
                    Ok(now) => {
                        tracing::info!(reason = why, fingerprint = %now, previous = %before, "TLS certificate replaced");
                    }
                    Err(e) => {
                        tracing::error!(reason = why, error = %e, fingerprint = %before, "cannot read the new TLS certificate; still serving the previous one");
                    }
                }
            }
        });
    }
}

impl std::fmt::Debug for CertificateSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSlot")
            .field("files", &self.files)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

fn stamp(files: &CertificateFiles) -> Stamp {
    let one = |path: &std::path::Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    [one(&files.cert), one(&files.key)]
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the certificate files are still watched");
            None
        }
    }
}
#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) -> Option<()> {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(files: &CertificateFiles, name: &str) -> Fingerprint {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        Fingerprint::of_der(made.cert.der())
    }

    #[test]
    fn a_broken_replacement_keeps_the_served_certificate_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let first = write_pair(&files, "first.example");
        let slot = CertificateSlot::load(files.clone()).unwrap();
        assert_eq!(slot.fingerprint(), first);
        assert!(!slot.changed_on_disk());

        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
        assert!(slot.changed_on_disk());
        let e = slot.reload().unwrap_err();
        assert!(e.to_string().contains("cert.pem"), "{e}");
        assert_eq!(slot.fingerprint(), first, "still serving the first");
        assert!(
            !slot.changed_on_disk(),
            "the broken files are not read again and again"
        );

        let second = write_pair(&files, "second.example");
        assert_eq!(slot.reload().unwrap(), second);
        assert_eq!(slot.fingerprint(), second);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        write_pair(&files, "one.example");
        let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
        std::fs::write(&files.key, other.signing_key.serialize_pem()).unwrap();
        let e = CertificateSlot::load(files).unwrap_err();
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    }
}
