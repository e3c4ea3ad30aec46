//! What the fuzz targets share: fixed keys (so a run is reproducible from its input alone), the
//! vendor's item spec parser compiled from the `tally` binary's own source, and a realistic
//! server clock.

use std::sync::LazyLock;

use tally_crypto::keys::{EncryptionKeyPair, SigningKey};
use tally_crypto::session::TicketKey;

#[path = "../../crates/tally-cli/src/vendor/dates.rs"]
mod dates;
/// The vendor's item spec parser (`tally vendor issue --item …` / `--items FILE`), compiled from
/// the same files as the binary: it lives in the binary crate, which has no library to link.
/// (It reaches its date parser as `super::dates`, hence both at the root.)
#[path = "../../crates/tally-cli/src/vendor/item_spec.rs"]
pub mod item_spec;

/// A server clock within the range a real server runs in (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// The vendor's signing key of every target.
pub static VENDOR: LazyLock<SigningKey> = LazyLock::new(|| {
    SigningKey::from_base64(&tally_crypto::b64_encode(&[7; 32])).expect("a fixed 32-byte seed")
});

/// The server's X25519 key pair requests are sealed to.
pub static SERVER: LazyLock<EncryptionKeyPair> = LazyLock::new(|| {
    EncryptionKeyPair::from_secret_base64(&tally_crypto::b64_encode(&[9; 32]))
        .expect("a fixed 32-byte X25519 secret")
});

/// The server's ticket key.
pub static TICKETS: LazyLock<TicketKey> = LazyLock::new(|| TicketKey::derive(b"fuzz server"));

/// Splits a fuzz input into a mode byte (which path of the target to take) and the rest.
pub fn mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(m, rest)| (*m, rest))
}
