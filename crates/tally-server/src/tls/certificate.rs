//! Reading a PEM certificate chain and its private key into what rustls serves.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tally_crypto::fingerprint::Fingerprint;

use super::{CertificateFiles, TlsError};

/// A certificate chain with its signing key, checked to belong together.
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// Of the server's own (first) certificate.
    pub fingerprint: Fingerprint,
}

/// Reads and checks `files`.
pub fn load(files: &CertificateFiles) -> Result<Loaded, TlsError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadCertificate {
            path: files.cert.clone(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    };
    let fingerprint = Fingerprint::of_der(leaf);
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::BadKey {
        path: files.key.clone(),
        source,
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|source| {
        TlsError::UnsupportedKey {
            path: files.key.clone(),
            source,
        }
    })?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        fingerprint,
    })
}
