//! Secrets the server keeps in its store (the SMTP password, the webhook signing secret) are
//! sealed with XChaCha20-Poly1305 under a 32-byte key that never enters the store: a backup or
//! a copy of the database alone does not give them away.
//!
//! The key is the file `<data_dir>/secret-key` (0600, made at first start), or the file the
//! `secret_key_file` setting names (the same file on every instance sharing a database). A
//! sealed value is `tally-sealed/1:` and base64 of nonce and ciphertext; the setting's name is the
//! associated data, so a sealed value cannot be moved to another setting. Values saved in clear
//! by an older version are read as they are and sealed at the next start
//! ([`seal_clear_settings`]).

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tally_store::StoreError;

use crate::state::AppState;

/// File name of the secret key inside the data directory.
pub const KEY_FILE: &str = "secret-key";
/// Settings whose whole value is sealed.
pub const PRIVATE_SETTINGS: [&str; 2] = [
    crate::alerts::mail::EMAIL_KEY,
    crate::alerts::webhook::WEBHOOK_KEY,
];
const SEALED_PREFIX: &str = "tally-sealed/1:";
const NONCE_BYTES: usize = 24;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the secret key file {p} does not exist; create it on one machine with `head -c 32 /dev/urandom | base64 > {p} && chmod 600 {p}` and copy it to every instance",
        p = path.display()
    )]
    MissingKeyFile { path: PathBuf },
    #[error("cannot use the secret key file {}: {source}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret key file {} must hold 32 random bytes in base64", path.display())]
    BadKey { path: PathBuf },
    #[error(
        "the saved `{setting}` cannot be opened with the secret key {}: it was sealed under another key (instances sharing a database need the same `secret_key_file`) or damaged; save these settings again",
        key_path.display()
    )]
    WrongKey { setting: String, key_path: PathBuf },
    #[error("cannot seal `{setting}`")]
    Seal { setting: String },
    #[error("the system random number generator failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key that seals and opens stored secrets.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Where the key came from, for messages.
    path: PathBuf,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SecretBox {
    /// Reads the key from `key_file` (which must exist), or from `<data_dir>/secret-key`, made
    /// on first use.
    pub fn load_or_create(data_dir: &Path, key_file: Option<&Path>) -> Result<Self, SecretError> {
        let (path, create) = match key_file {
            Some(p) => (p.to_owned(), false),
            None => (data_dir.join(KEY_FILE), true),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                return Self::create(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretError::MissingKeyFile { path });
            }
            Err(source) => return Err(SecretError::KeyFile { path, source }),
        };
        warn_if_readable_by_others(&path);
        let key = tally_crypto::b64_decode(text.trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| SecretError::BadKey { path: path.clone() })?;
        Ok(Self::from_key(key, path))
    }

    fn create(path: PathBuf) -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        tally_crypto::random_bytes(&mut key).map_err(|_| SecretError::Random)?;
        let text = format!("{}\n", tally_crypto::b64_encode(&key));
        crate::identity::write_private(&path, text.as_bytes()).map_err(|source| {
            SecretError::KeyFile {
                path: path.clone(),
                source,
            }
        })?;
        tracing::info!(path = %path.display(), "created the key that seals stored secrets");
        Ok(Self::from_key(key, path))
    }

    /// A box over `key`; `path` only names it in messages.
    pub fn from_key(key: [u8; 32], path: PathBuf) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            path,
        }
    }

    /// Where the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a stored value is sealed (else it was saved in clear by an older version).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Seals `clear` for the setting `setting`.
    pub fn seal(&self, setting: &str, clear: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_BYTES];
        tally_crypto::random_bytes(&mut nonce).map_err(|_| SecretError::Random)?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: clear.as_bytes(),
                    aad: setting.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Seal {
                setting: setting.to_owned(),
            })?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}",
            tally_crypto::b64_encode(&bytes)
        ))
    }

    /// Opens a value stored for `setting`; a value saved in clear is returned as it is.
    pub fn open(&self, setting: &str, stored: &str) -> Result<String, SecretError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let wrong_key = || SecretError::WrongKey {
            setting: setting.to_owned(),
            key_path: self.path.clone(),
        };
        let bytes = tally_crypto::b64_decode(encoded).map_err(|_| wrong_key())?;
        if bytes.len() < NONCE_BYTES {
            return Err(wrong_key());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| wrong_key())?;
        let clear = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: setting.as_bytes(),
                },
            )
            .map_err(|_| wrong_key())?;
        String::from_utf8(clear).map_err(|_| wrong_key())
    }
}

/// A key others can read is not much of a secret: said once at start.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the secret key file can be read by other users: chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The setting `setting`, opened: the one place stored secrets are read.
pub async fn load(state: &AppState, setting: &str) -> Result<Option<String>, SecretError> {
    match state.store.get_setting(setting).await? {
        Some(stored) => Ok(Some(state.secrets.open(setting, &stored)?)),
        None => Ok(None),
    }
}

/// Saves `value` sealed as the setting `setting`: the one place stored secrets are written.
pub async fn save(state: &AppState, setting: &str, value: &str) -> Result<(), SecretError> {
    let sealed = state.secrets.seal(setting, value)?;
    state.store.put_setting(setting, &sealed).await?;
    Ok(())
}

/// Seals the private settings an older version saved in clear. Run at start; a failure is
/// logged (the values stay readable) and tried again at the next start.
pub async fn seal_clear_settings(state: &AppState) {
    for setting in PRIVATE_SETTINGS {
        let result = async {
            match state.store.get_setting(setting).await? {
                Some(stored) if !SecretBox::is_sealed(&stored) => {
                    save(state, setting, &stored).await?;
                    Ok::<bool, SecretError>(true)
                }
                _ => Ok(false),
            }
        }
        .await;
        match result {
            Ok(true) => {
                tracing::info!(
                    setting,
                    "sealed a secret stored in clear by an older version"
                )
            }
            Ok(false) => {}
            Err(e) => tracing::error!(setting, error = %e, "cannot seal a secret stored in clear"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_box() -> SecretBox {
        SecretBox::from_key([7; 32], PathBuf::from("secret-key"))
    }

    #[test]
    fn a_sealed_value_opens_only_under_its_key_and_setting() {
        let b = sealed_box();
        let sealed = b
            .seal("alerts.email", "{\"password\":\"hunter2\"}")
            .unwrap();
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"), "{sealed}");
        assert_eq!(
            b.open("alerts.email", &sealed).unwrap(),
            "{\"password\":\"hunter2\"}"
        );
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            b.seal("alerts.email", "{\"password\":\"hunter2\"}")
                .unwrap()
        );
        // Another setting, another key, a damaged value: refused with the reason.
        let moved = b.open("alerts.webhooks", &sealed).unwrap_err();
        assert!(matches!(moved, SecretError::WrongKey { .. }), "{moved:?}");
        let other = SecretBox::from_key([8; 32], PathBuf::from("/etc/tally/key"));
        let message = other.open("alerts.email", &sealed).unwrap_err().to_string();
        assert!(message.contains("another key"), "{message}");
        assert!(message.contains("/etc/tally/key"), "{message}");
        assert!(b.open("alerts.email", "tally-sealed/1:AAAA").is_err());
    }

    #[test]
    fn a_value_saved_in_clear_is_read_as_it_is() {
        assert_eq!(sealed_box().open("alerts.email", "{}").unwrap(), "{}");
        assert!(!SecretBox::is_sealed("{}"));
    }

    #[test]
    fn the_key_is_made_once_in_the_data_directory_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::load_or_create(dir.path(), None).unwrap();
        let sealed = first.seal("s", "v").unwrap();
        let again = SecretBox::load_or_create(dir.path(), None).unwrap();
        assert_eq!(again.open("s", &sealed).unwrap(), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_named_key_file_must_exist_and_hold_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("shared-key");
        let missing = SecretBox::load_or_create(dir.path(), Some(&named)).unwrap_err();
        assert!(
            matches!(missing, SecretError::MissingKeyFile { .. }),
            "{missing:?}"
        );
        assert!(!named.exists());
        std::fs::write(&named, "not a key\n").unwrap();
        let bad = SecretBox::load_or_create(dir.path(), Some(&named)).unwrap_err();
        assert!(matches!(bad, SecretError::BadKey { .. }), "{bad:?}");
        std::fs::write(&named, format!("{}\n", tally_crypto::b64_encode(&[9; 32]))).unwrap();
        let b = SecretBox::load_or_create(dir.path(), Some(&named)).unwrap();
        let same = SecretBox::from_key([9; 32], named.clone());
        assert_eq!(same.open("s", &b.seal("s", "v").unwrap()).unwrap(), "v");
        // The data directory's own key is not made when a file is named.
        assert!(!dir.path().join(KEY_FILE).exists());
    }
}
