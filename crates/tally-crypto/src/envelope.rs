//! End-to-end encryption of client requests and server replies, even over plain HTTP.
//!
//! A request is sealed with HPKE (RFC 9180, base mode; DHKEM-X25519-HKDF-SHA256, HKDF-SHA256,
//! ChaCha20-Poly1305) to the server's X25519 key. Both sides then export a one-time reply key
//! from the HPKE context, so only the client that sent the request can read the reply. The HPKE
//! `info` names the endpoint, so a request sealed for one endpoint cannot be replayed to another.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use tally_proto::wire::{Envelope, SealedResponse};

use crate::keys::{EncryptionKeyPair, EncryptionPublicKey, Kem};
use crate::session::SessionKey;
use crate::{CryptoError, CryptoResult, b64_decode, b64_encode};

type Kdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

/// Envelope version this code speaks: the protocol version.
pub const ENVELOPE_VERSION: u8 = tally_proto::wire::PROTOCOL_VERSION;

fn info(purpose: &str) -> Vec<u8> {
    format!("tally/v{ENVELOPE_VERSION} {purpose}").into_bytes()
}

/// The HPKE `info` of requests sealed for `purpose` (e.g. `authorize`), for the protocol test
/// vectors that other implementations check against.
pub fn hpke_info(purpose: &str) -> Vec<u8> {
    info(purpose)
}

/// Export label of the one-time reply key in the request's HPKE context.
pub const REPLY_KEY_LABEL: &[u8] = b"tally reply key";
/// Export label of the report-session key in an authorization's HPKE context.
pub const SESSION_KEY_LABEL: &[u8] = b"tally session key";

/// The one-time key that seals the reply to one request, and the report-session key both
/// sides can derive from the same request (see [`crate::session`]).
pub struct ReplyKey {
    reply: [u8; 32],
    session: [u8; 32],
}

impl ReplyKey {
    fn export<C>(mut export: C) -> CryptoResult<Self>
    where
        C: FnMut(&[u8], &mut [u8]) -> Result<(), hpke::HpkeError>,
    {
        let mut reply = [0u8; 32];
        let mut session = [0u8; 32];
        export(REPLY_KEY_LABEL, &mut reply).map_err(|_| CryptoError::Encrypt)?;
        export(SESSION_KEY_LABEL, &mut session).map_err(|_| CryptoError::Encrypt)?;
        Ok(Self { reply, session })
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.reply.into())
    }

    /// The reply key itself, for the protocol test vectors (other implementations compare their
    /// HPKE export with it).
    pub fn reply_key_bytes(&self) -> &[u8; 32] {
        &self.reply
    }

    /// The key of the report session this request may open (an authorization does).
    pub fn session_key(&self) -> SessionKey {
        SessionKey(self.session)
    }

    /// Seals the reply. The key is used for exactly one message, so a fixed nonce is safe.
    pub fn seal(&self, plaintext: &[u8]) -> CryptoResult<SealedResponse> {
        let ct = self
            .cipher()
            .encrypt(&Nonce::default(), plaintext)
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(SealedResponse {
            ct: b64_encode(&ct),
        })
    }

    /// Opens the reply to the request this key belongs to.
    pub fn open(&self, sealed: &SealedResponse) -> CryptoResult<Vec<u8>> {
        let ct = b64_decode(&sealed.ct)?;
        self.cipher()
            .decrypt(&Nonce::default(), ct.as_slice())
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Client side: seals `plaintext` for the server and keeps the key to open its reply.
pub fn seal_request(
    server: &EncryptionPublicKey,
    purpose: &str,
    plaintext: &[u8],
) -> CryptoResult<(Envelope, ReplyKey)> {
    let (enc, mut ctx) =
        hpke::setup_sender::<HpkeAead, Kdf, Kem>(&OpModeS::Base, &server.0, &info(purpose))
            .map_err(|_| CryptoError::Encrypt)?;
    let ct = ctx.seal(plaintext, &[]).map_err(|_| CryptoError::Encrypt)?;
    let reply = ReplyKey::export(|label, out| ctx.export(label, out))?;
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        enc: b64_encode(&enc.to_bytes()),
        ct: b64_encode(&ct),
    };
    Ok((envelope, reply))
}

/// An opened request: its plaintext, the key for the reply, and the encapsulated key, which is
/// unique per sealing and so serves as the replay-detection id.
pub struct OpenedRequest {
    pub plaintext: Vec<u8>,
    pub reply_key: ReplyKey,
    pub replay_id: [u8; 32],
}

/// Server side: opens an envelope sealed to `keys` for `purpose`.
pub fn open_request(
    keys: &EncryptionKeyPair,
    purpose: &str,
    envelope: &Envelope,
) -> CryptoResult<OpenedRequest> {
    if envelope.v != ENVELOPE_VERSION {
        return Err(CryptoError::Malformed(format!(
            "unsupported envelope version {} (this server speaks {ENVELOPE_VERSION})",
            envelope.v
        )));
    }
    let enc_bytes = b64_decode(&envelope.enc)?;
    let replay_id: [u8; 32] = enc_bytes
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("the encapsulated key must be 32 bytes".into()))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc_bytes)
        .map_err(|_| CryptoError::Malformed("invalid encapsulated key".into()))?;
    let ct = b64_decode(&envelope.ct)?;
    let mut ctx = hpke::setup_receiver::<HpkeAead, Kdf, Kem>(
        &OpModeR::Base,
        &keys.secret,
        &enc,
        &info(purpose),
    )
    .map_err(|_| CryptoError::Decrypt)?;
    let plaintext = ctx.open(&ct, &[]).map_err(|_| CryptoError::Decrypt)?;
    let reply_key = ReplyKey::export(|label, out| ctx.export(label, out))?;
    Ok(OpenedRequest {
        plaintext,
        reply_key,
        replay_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply_round_trip() {
        let server = EncryptionKeyPair::generate().unwrap();
        let (env, client_reply) = seal_request(&server.public(), "authorize", b"hello").unwrap();
        let opened = open_request(&server, "authorize", &env).unwrap();
        assert_eq!(opened.plaintext, b"hello");
        let sealed = opened.reply_key.seal(b"granted").unwrap();
        assert_eq!(client_reply.open(&sealed).unwrap(), b"granted");
        assert_eq!(
            client_reply.session_key().0,
            opened.reply_key.session_key().0
        );
        assert_ne!(client_reply.session_key().0, client_reply.reply);
    }

    #[test]
    fn wrong_key_wrong_purpose_or_tampering_fail() {
        let server = EncryptionKeyPair::generate().unwrap();
        let other = EncryptionKeyPair::generate().unwrap();
        let (env, _) = seal_request(&server.public(), "authorize", b"hello").unwrap();
        assert!(open_request(&other, "authorize", &env).is_err());
        assert!(open_request(&server, "report", &env).is_err());
        let mut ct = b64_decode(&env.ct).unwrap();
        ct[0] ^= 1;
        let tampered = Envelope {
            ct: b64_encode(&ct),
            ..env
        };
        assert!(open_request(&server, "authorize", &tampered).is_err());
    }

    #[test]
    fn a_reply_opens_only_with_its_own_request_key() {
        let server = EncryptionKeyPair::generate().unwrap();
        let (env1, _k1) = seal_request(&server.public(), "report", b"a").unwrap();
        let (_env2, k2) = seal_request(&server.public(), "report", b"b").unwrap();
        let sealed = open_request(&server, "report", &env1)
            .unwrap()
            .reply_key
            .seal(b"x")
            .unwrap();
        assert!(k2.open(&sealed).is_err());
    }
}
