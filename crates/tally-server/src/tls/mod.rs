//! HTTPS with rustls: the certificate the listener presents ([`certificate`]), read from the
//! settings' PEM files or made once at first start ([`self_signed`]), swapped without a restart on
//! SIGHUP or when the files change ([`reload`]); the headers and redirects that go with it
//! ([`hsts`], [`redirect`]).

mod certificate;
pub mod hsts;
pub mod redirect;
mod reload;
mod self_signed;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tally_crypto::fingerprint::Fingerprint;

use crate::settings::{Settings, TlsMode};

pub use reload::CertificateSlot;

/// Why HTTPS cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")")]
    NoCertificate { path: PathBuf },
    #[error("{path} is not a PEM certificate chain: {source}")]
    BadCertificate {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {source}")]
    BadKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the private key in {path} cannot sign for TLS: {source}")]
    UnsupportedKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the served certificate and key come from.
#[derive(Clone, Debug)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The HTTPS side of the server: the acceptor the listener hands connections to, and the slot it
/// takes the current certificate from.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub certificates: Arc<CertificateSlot>,
}

impl ServerTls {
    /// HTTPS as the settings ask for it; `None` when `tls = "off"`. A self-signed certificate is
    /// made in `<data_dir>/tls/` the first time and used again afterwards, so that clients that
    /// pinned it keep trusting the server.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, TlsError> {
        let files = match settings.tls {
            TlsMode::Off => return Ok(None),
            TlsMode::Files => match (&settings.tls_cert_file, &settings.tls_key_file) {
                (Some(cert), Some(key)) => CertificateFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                // `Settings::validate` refuses this; said again rather than assumed.
                _ => {
                    return Err(TlsError::NoCertificate {
                        path: PathBuf::from("tls_cert_file"),
                    });
                }
            },
            TlsMode::SelfSigned => self_signed::ensure(
                &settings.data_dir,
                &self_signed::names(&settings.tls_names, settings.listen),
            )?,
        };
        Self::from_files(files).map(Some)
    }

    /// HTTPS with the certificate and key in `files`.
    pub fn from_files(files: CertificateFiles) -> Result<Self, TlsError> {
        let certificates = Arc::new(CertificateSlot::load(files)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(certificates.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificates,
        })
    }

    /// The fingerprint of the certificate served now.
    pub fn fingerprint(&self) -> Fingerprint {
        self.certificates.fingerprint()
    }
}

/// The directory a self-signed certificate is kept in.
pub fn self_signed_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}
