//! Cryptography of Tally, in one place so that every party uses the same constructions:
//!
//! * [`keys`]: Ed25519 signing keys (vendor, server) and X25519 encryption keys (server), with
//!   their text encodings.
//! * [`document`]: armored, signed license files (issued and activated).
//! * [`grant`]: the server's signature on a grant.
//! * [`envelope`]: HPKE (RFC 9180) sealing of requests to the server and of its replies.
//! * [`session`]: report sessions: symmetric keys exported at authorization, server tickets.
//! * [`fingerprint`]: SHA-256 fingerprints of TLS certificates, shown by servers, pinned by clients.

pub mod document;
pub mod envelope;
pub mod fingerprint;
pub mod grant;
pub mod keys;
pub mod session;

pub use keys::{EncryptionKeyPair, SigningKey, VerifyingKey};

/// Every way a cryptographic check or decoding can fail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("malformed key: {0}")]
    BadKey(String),
    #[error("malformed document: {0}")]
    Malformed(String),
    #[error("expected a {expected} but found a {found}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("signature verification failed: the document was altered or not signed by this key")]
    BadSignature,
    #[error("decryption failed: the message was altered or not meant for this key")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
    #[error("the system random number generator failed")]
    Random,
}

pub type CryptoResult<T> = Result<T, CryptoError>;

/// Standard base64 with padding, the one text encoding of binary values in Tally.
pub fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64, refusing non-canonical input.
pub fn b64_decode(text: &str) -> CryptoResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| CryptoError::Malformed(format!("invalid base64: {e}")))
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) -> CryptoResult<()> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// A random 128-bit identifier as 32 lowercase hex digits.
pub fn random_id() -> CryptoResult<String> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
