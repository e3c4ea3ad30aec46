//! Session passwords verified once, remembered so that the next check of the same password costs
//! one HMAC instead of an Argon2 run: every authorization of a device sends the password again.
//!
//! What is kept is a keyed digest (HMAC-SHA256 under a key drawn at start, never written
//! anywhere), never the password, together with the stored hash it was verified against: when
//! the code's hash changes (password changed or removed) the entry no longer applies. One entry
//! per handshake code, so memory is bounded by the codes that have a password.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type Digest = [u8; 32];

struct Entry {
    /// The PHC string the password was verified against.
    stored: String,
    digest: Digest,
}

pub struct Remembered {
    /// Keyed with this process's random key; cloned for each digest.
    mac: Hmac<Sha256>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Remembered {
    pub fn new() -> Result<Self, String> {
        let mut key = [0u8; 32];
        tally_crypto::random_bytes(&mut key)
            .map_err(|e| format!("cannot draw the session-password digest key: {e}"))?;
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
            .map_err(|e| format!("cannot key the session-password digest: {e}"))?;
        Ok(Self {
            mac,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `password` is the one verified for `code` against this same `stored` hash. An
    /// entry made for another hash is dropped on the way.
    pub fn knows(&self, code: &str, stored: &str, password: &str) -> bool {
        let digest = self.digest(password);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(code) {
            Some(e) if e.stored == stored => e.digest.ct_eq(&digest).into(),
            Some(_) => {
                entries.remove(code);
                false
            }
            None => false,
        }
    }

    /// Remembers that Argon2 found `password` right for `code` against `stored`.
    pub fn remember(&self, code: &str, stored: &str, password: &str) {
        let entry = Entry {
            stored: stored.to_owned(),
            digest: self.digest(password),
        };
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(code.to_owned(), entry);
    }

    fn digest(&self, password: &str) -> Digest {
        let mut mac = self.mac.clone();
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_password_is_known_for_its_code_and_hash_only() {
        let r = Remembered::new().unwrap();
        assert!(!r.knows("c1", "$hash1", "right"));
        r.remember("c1", "$hash1", "right");
        assert!(r.knows("c1", "$hash1", "right"));
        assert!(!r.knows("c1", "$hash1", "wrong"));
        assert!(!r.knows("c2", "$hash1", "right"), "per code");
        assert!(
            r.knows("c1", "$hash1", "right"),
            "a wrong try forgets nothing"
        );
    }

    #[test]
    fn a_changed_hash_drops_the_entry() {
        let r = Remembered::new().unwrap();
        r.remember("c1", "$hash1", "right");
        assert!(!r.knows("c1", "$hash2", "right"));
        assert_eq!(r.len(), 0);
        assert!(!r.knows("c1", "$hash1", "right"), "gone for good");
    }

    #[test]
    fn one_entry_per_code_and_no_password_kept() {
        let r = Remembered::new().unwrap();
        r.remember("c1", "$hash1", "first");
        r.remember("c1", "$hash2", "second");
        assert_eq!(r.len(), 1);
        assert!(r.knows("c1", "$hash2", "second"));
        let entries = r.entries.lock().unwrap();
        assert!(!entries["c1"].digest.windows(6).any(|w| w == b"second"));
    }

    #[test]
    fn digests_depend_on_the_process_key() {
        let (a, b) = (Remembered::new().unwrap(), Remembered::new().unwrap());
        assert_eq!(a.digest("pw"), a.digest("pw"));
        assert_ne!(a.digest("pw"), b.digest("pw"));
    }
}
