//! Key types and their encodings. Public keys travel as base64 of their 32 raw bytes; secret key
//! files hold base64 of the 32-byte seed behind a one-line header naming the key's use.

use ed25519_dalek::Signer;
use hpke::{Deserializable, Kem as _, Serializable};

use crate::{CryptoError, CryptoResult, b64_decode, b64_encode, random_bytes};

/// HPKE suite of Tally: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
pub(crate) type Kem = hpke::kem::X25519HkdfSha256;

/// An Ed25519 secret key (vendor or server).
#[derive(Clone)]
pub struct SigningKey(pub(crate) ed25519_dalek::SigningKey);

/// An Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> CryptoResult<Self> {
        let mut seed = [0u8; 32];
        random_bytes(&mut seed)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `message`, returning the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The secret seed as base64 (keep it private).
    pub fn to_base64(&self) -> String {
        b64_encode(&self.0.to_bytes())
    }

    pub fn from_base64(text: &str) -> CryptoResult<Self> {
        let bytes: [u8; 32] = b64_decode(text.trim())?
            .try_into()
            .map_err(|_| CryptoError::BadKey("an Ed25519 secret key has 32 bytes".into()))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&bytes)))
    }
}

impl VerifyingKey {
    pub fn to_base64(&self) -> String {
        b64_encode(self.0.as_bytes())
    }

    pub fn from_base64(text: &str) -> CryptoResult<Self> {
        let bytes: [u8; 32] = b64_decode(text.trim())?
            .try_into()
            .map_err(|_| CryptoError::BadKey("an Ed25519 public key has 32 bytes".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| CryptoError::BadKey("not a valid Ed25519 public key".into()))
    }

    /// Strict Ed25519 verification (rejects malleable and small-order signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> CryptoResult<()> {
        let sig: [u8; 64] = signature
            .try_into()
            .map_err(|_| CryptoError::BadSignature)?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// The server's X25519 key pair that clients encrypt requests to.
#[derive(Clone)]
pub struct EncryptionKeyPair {
    pub(crate) secret: <Kem as hpke::Kem>::PrivateKey,
    pub(crate) public: <Kem as hpke::Kem>::PublicKey,
}

/// An X25519 public key of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionPublicKey(pub(crate) <Kem as hpke::Kem>::PublicKey);

impl EncryptionKeyPair {
    pub fn generate() -> CryptoResult<Self> {
        let mut ikm = [0u8; 32];
        random_bytes(&mut ikm)?;
        let (secret, public) = Kem::derive_keypair(&ikm);
        Ok(Self { secret, public })
    }

    pub fn public(&self) -> EncryptionPublicKey {
        EncryptionPublicKey(self.public.clone())
    }

    pub fn secret_to_base64(&self) -> String {
        b64_encode(&self.secret.to_bytes())
    }

    pub fn from_secret_base64(text: &str) -> CryptoResult<Self> {
        let bytes = b64_decode(text.trim())?;
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(&bytes)
            .map_err(|_| CryptoError::BadKey("not a valid X25519 secret key".into()))?;
        let public = Kem::sk_to_pk(&secret);
        Ok(Self { secret, public })
    }
}

impl EncryptionPublicKey {
    pub fn to_base64(&self) -> String {
        b64_encode(&self.0.to_bytes())
    }

    pub fn from_base64(text: &str) -> CryptoResult<Self> {
        let bytes = b64_decode(text.trim())?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| CryptoError::BadKey("not a valid X25519 public key".into()))
    }
}

/// Header line of a vendor secret key file.
pub const VENDOR_KEY_HEADER: &str = "TALLY VENDOR SECRET KEY (Ed25519, keep private)";

/// Renders a vendor secret key file.
pub fn vendor_key_file(key: &SigningKey) -> String {
    format!(
        "{VENDOR_KEY_HEADER}\n{}\npublic: {}\n",
        key.to_base64(),
        key.verifying_key().to_base64()
    )
}

/// Parses a vendor secret key file written by [`vendor_key_file`].
pub fn parse_vendor_key_file(text: &str) -> CryptoResult<SigningKey> {
    let mut lines = text.lines();
    if lines.next() != Some(VENDOR_KEY_HEADER) {
        return Err(CryptoError::BadKey(
            "not a Tally vendor secret key file (missing header line)".into(),
        ));
    }
    let secret = lines
        .next()
        .ok_or_else(|| CryptoError::BadKey("vendor key file has no key line".into()))?;
    let key = SigningKey::from_base64(secret)?;
    if let Some(public_line) = lines.next() {
        let public = public_line.strip_prefix("public: ").unwrap_or(public_line);
        if VerifyingKey::from_base64(public)? != key.verifying_key() {
            return Err(CryptoError::BadKey(
                "vendor key file is inconsistent: its public key does not match the secret".into(),
            ));
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text() {
        let k = SigningKey::generate().unwrap();
        let k2 = parse_vendor_key_file(&vendor_key_file(&k)).unwrap();
        assert_eq!(k.verifying_key(), k2.verifying_key());
        let e = EncryptionKeyPair::generate().unwrap();
        let e2 = EncryptionKeyPair::from_secret_base64(&e.secret_to_base64()).unwrap();
        assert_eq!(e.public(), e2.public());
        let p = EncryptionPublicKey::from_base64(&e.public().to_base64()).unwrap();
        assert_eq!(p, e.public());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(VerifyingKey::from_base64("AAAA").is_err());
        assert!(SigningKey::from_base64("not base64!").is_err());
        assert!(parse_vendor_key_file("hello\n").is_err());
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let k = SigningKey::generate().unwrap();
        let sig = k.sign(b"hello");
        k.verifying_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            k.verifying_key().verify(b"hellO", &sig),
            Err(CryptoError::BadSignature)
        );
    }
}
