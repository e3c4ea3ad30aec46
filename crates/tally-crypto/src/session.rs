//! Report sessions: symmetric encryption for the frequent usage reports, so that only the rare
//! authorization pays for public-key work.
//!
//! An authorization's HPKE context exports a 32-byte session key on both sides. The server hands
//! the client a *ticket*: the session key and what it is good for (device, handshake code,
//! expiry), encrypted with a key only the server holds. The server keeps no table of sessions; it
//! recovers the key from the ticket of each report. Each report carries a sequence number that
//! lets the server refuse replays.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use tally_proto::UnixSeconds;

use crate::{CryptoError, CryptoResult, b64_decode, b64_encode, random_bytes};

/// Which way a session message travels; part of the nonce, so a reply can never be replayed as a
/// request or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer = 0,
    ToClient = 1,
}

/// The symmetric key of one report session.
#[derive(Clone)]
pub struct SessionKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The key itself, for a client that keeps its session across restarts.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts message number `seq` of the session in `direction`: XChaCha20-Poly1305 with a
    /// random nonce sent in front of the ciphertext, and the direction, the number and `ticket`
    /// bound as associated data, so a message cannot be moved to another session, number or
    /// direction. A random nonce never repeats even when a number is used twice (a device
    /// restored from a backup, a server that lost its memory of seen numbers and answered a
    /// replayed request again); the server's window refuses repeated numbers.
    pub fn seal(
        &self,
        direction: Direction,
        seq: u64,
        ticket: &str,
        plaintext: &[u8],
    ) -> CryptoResult<String> {
        let mut nonce = [0u8; TICKET_NONCE];
        random_bytes(&mut nonce)?;
        let ct = XChaCha20Poly1305::new(&self.0.into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &message_aad(direction, seq, ticket),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(b64_encode(&out))
    }

    /// Decrypts what [`SessionKey::seal`] produced with the same direction, number and ticket.
    pub fn open(
        &self,
        direction: Direction,
        seq: u64,
        ticket: &str,
        ciphertext: &str,
    ) -> CryptoResult<Vec<u8>> {
        let ct = b64_decode(ciphertext)?;
        if ct.len() < TICKET_NONCE {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, body) = ct.split_at(TICKET_NONCE);
        let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Decrypt)?;
        XChaCha20Poly1305::new(&self.0.into())
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: &message_aad(direction, seq, ticket),
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// Associated data of a session message: its direction, its number (8 bytes, big-endian), the
/// ticket's text.
pub fn message_aad(direction: Direction, seq: u64, ticket: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(9 + ticket.len());
    aad.push(direction as u8);
    aad.extend_from_slice(&seq.to_be_bytes());
    aad.extend_from_slice(ticket.as_bytes());
    aad
}

/// What a ticket vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketContents {
    pub device_uuid: String,
    pub handshake_code: String,
    pub expires_at: UnixSeconds,
}

#[derive(Serialize, Deserialize)]
struct SealedContents {
    #[serde(flatten)]
    contents: TicketContents,
    key: String,
}

/// An opened ticket: the session's key, what it is good for, and a stable id for replay state.
#[derive(Debug)]
pub struct OpenedTicket {
    pub key: SessionKey,
    pub contents: TicketContents,
    /// Unique per ticket (its random nonce), used to key the sequence-number window.
    pub id: [u8; 16],
}

/// The server's secret for sealing tickets. Derived from the server's identity so that tickets
/// survive a restart.
pub struct TicketKey([u8; 32]);

/// Bytes of the random nonce at the start of a ticket and of every session message.
pub const TICKET_NONCE: usize = 24;

impl TicketKey {
    /// Derives the ticket key from secret material with a label of its own, so it can never
    /// equal the key it was derived from.
    pub fn derive(secret: &[u8]) -> Self {
        let mut input = b"tally/v2 ticket key\0".to_vec();
        input.extend_from_slice(secret);
        Self(crate::sha256(&input))
    }

    /// The ticket key of a server, derived from its signing key.
    pub fn for_server(signing: &crate::SigningKey) -> Self {
        Self::derive(&signing.0.to_bytes())
    }

    /// Seals `key` and `contents` into an opaque ticket for the client.
    pub fn issue(&self, key: &SessionKey, contents: &TicketContents) -> CryptoResult<String> {
        let plain = serde_json::to_vec(&SealedContents {
            contents: contents.clone(),
            key: b64_encode(&key.0),
        })
        .map_err(|_| CryptoError::Encrypt)?;
        let mut nonce = [0u8; TICKET_NONCE];
        random_bytes(&mut nonce)?;
        let ct = XChaCha20Poly1305::new(&self.0.into())
            .encrypt(&XNonce::from(nonce), plain.as_slice())
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(b64_encode(&out))
    }

    /// The id of a ticket (its first nonce bytes), read without decrypting it.
    pub fn ticket_id(ticket: &str) -> CryptoResult<[u8; 16]> {
        // 24 base64 characters are 18 whole bytes, so the prefix decodes on its own.
        let prefix = ticket
            .get(..24)
            .ok_or_else(|| CryptoError::Malformed("the ticket is too short".into()))?;
        let bytes = b64_decode(prefix)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(bytes.get(..16).ok_or(CryptoError::Decrypt)?);
        Ok(id)
    }

    /// Opens a ticket this key issued; anything else (altered, foreign, truncated) fails.
    pub fn open(&self, ticket: &str) -> CryptoResult<OpenedTicket> {
        let bytes = b64_decode(ticket)?;
        if bytes.len() <= TICKET_NONCE {
            return Err(CryptoError::Malformed("the ticket is too short".into()));
        }
        let (nonce, ct) = bytes.split_at(TICKET_NONCE);
        let xnonce = XNonce::try_from(nonce)
            .map_err(|_| CryptoError::Malformed("the ticket nonce is malformed".into()))?;
        let plain = XChaCha20Poly1305::new(&self.0.into())
            .decrypt(&xnonce, ct)
            .map_err(|_| CryptoError::Decrypt)?;
        let sealed: SealedContents = serde_json::from_slice(&plain)
            .map_err(|e| CryptoError::Malformed(format!("ticket contents: {e}")))?;
        let key: [u8; 32] = b64_decode(&sealed.key)?
            .try_into()
            .map_err(|_| CryptoError::Malformed("the ticket key must be 32 bytes".into()))?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&nonce[..16]);
        Ok(OpenedTicket {
            key: SessionKey(key),
            contents: sealed.contents,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents() -> TicketContents {
        TicketContents {
            device_uuid: "dev-1".into(),
            handshake_code: "acme-default".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn ticket_round_trip_and_foreign_or_altered_tickets_fail() {
        let server = TicketKey::derive(b"server secret");
        let key = SessionKey([7; 32]);
        let ticket = server.issue(&key, &contents()).unwrap();
        let opened = server.open(&ticket).unwrap();
        assert_eq!(opened.contents, contents());
        assert_eq!(opened.key.0, [7; 32]);
        assert!(TicketKey::derive(b"other").open(&ticket).is_err());
        let mut bytes = b64_decode(&ticket).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(server.open(&b64_encode(&bytes)).is_err());
        assert!(server.open("AAAA").is_err());
        let again = server.issue(&key, &contents()).unwrap();
        assert_ne!(server.open(&again).unwrap().id, opened.id);
        assert_eq!(TicketKey::ticket_id(&ticket).unwrap(), opened.id);
        assert!(TicketKey::ticket_id("short").is_err());
    }

    #[test]
    fn messages_open_only_with_same_direction_number_and_ticket() {
        let key = SessionKey([9; 32]);
        let ct = key.seal(Direction::ToServer, 5, "t", b"report").unwrap();
        assert_eq!(
            key.open(Direction::ToServer, 5, "t", &ct).unwrap(),
            b"report"
        );
        assert!(key.open(Direction::ToClient, 5, "t", &ct).is_err());
        assert!(key.open(Direction::ToServer, 6, "t", &ct).is_err());
        assert!(key.open(Direction::ToServer, 5, "u", &ct).is_err());
        assert!(
            SessionKey([8; 32])
                .open(Direction::ToServer, 5, "t", &ct)
                .is_err()
        );
        let reply = key.seal(Direction::ToClient, 5, "t", b"ok").unwrap();
        assert_eq!(
            key.open(Direction::ToClient, 5, "t", &reply).unwrap(),
            b"ok"
        );
        assert!(key.open(Direction::ToClient, 6, "t", &reply).is_err());
        assert!(key.open(Direction::ToClient, 5, "u", &reply).is_err());
        assert!(key.open(Direction::ToServer, 5, "t", &reply).is_err());
        // The same message sealed twice never shares a nonce.
        assert_ne!(reply, key.seal(Direction::ToClient, 5, "t", b"ok").unwrap());
        assert_ne!(
            ct,
            key.seal(Direction::ToServer, 5, "t", b"report").unwrap()
        );
    }
}
