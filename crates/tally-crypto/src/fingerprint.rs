//! Certificate fingerprints: the SHA-256 of a certificate's DER bytes, shown as colon-separated
//! upper-case hex pairs (as `openssl x509 -fingerprint -sha256` prints it). The server logs and
//! shows the one it serves; a client may pin it instead of trusting a certificate authority.

use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of one DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a pinned fingerprint could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a certificate fingerprint is 64 hexadecimal digits (SHA-256), colons allowed, optionally prefixed with \"sha256:\"; found {found} digits"
)]
pub struct BadFingerprint {
    found: usize,
}

impl std::str::FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Accepts `AB:CD:…`, `abcd…` and either with a `sha256:` or `SHA256=` prefix.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let text = ["sha256:", "sha256=", "SHA256:", "SHA256="]
            .iter()
            .find_map(|p| text.strip_prefix(p))
            .unwrap_or(text);
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
        let bad = || BadFingerprint {
            found: digits.len(),
        };
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *slot = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_and_read_back_in_every_accepted_spelling() {
        let fp = Fingerprint::of_der(b"not really a certificate");
        let shown = fp.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.chars().all(|c| c == ':' || c.is_ascii_hexdigit()));
        let bare = shown.replace(':', "").to_lowercase();
        for spelling in [
            shown.clone(),
            bare.clone(),
            format!("sha256:{bare}"),
            format!("SHA256={shown}"),
        ] {
            assert_eq!(spelling.parse::<Fingerprint>(), Ok(fp), "{spelling}");
        }
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused() {
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
        assert!("é".repeat(32).parse::<Fingerprint>().is_err());
    }
}
