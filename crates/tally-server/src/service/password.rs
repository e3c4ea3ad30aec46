//! Session passwords of handshake codes: stored as Argon2id PHC strings, never in clear; the
//! comparison inside Argon2 verification is constant-time.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tally_proto::ErrorCode;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// What session-password checks remember between requests.
pub struct PasswordGuard {}

impl PasswordGuard {
    pub fn new() -> Result<Self, String> {
        Ok(Self {})
    }
}

/// Checks the session password `given` for handshake code `code`, whose stored hash is `stored`,
/// asked from `source`. `WrongSessionPassword` when it does not match.
pub async fn check(
    state: &AppState,
    code: &str,
    stored: &str,
    given: &str,
    source: std::net::IpAddr,
) -> ApiResult<()> {
    let _ = (state, code, source);
    if verify(given, stored) {
        Ok(())
    } else {
        Err(ApiError::plain(ErrorCode::WrongSessionPassword))
    }
}

/// Hashes a new password with a random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored hash. A damaged hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            tracing::error!("a stored session password hash is damaged");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("s3cret", &h));
        assert!(!verify("S3cret", &h));
        assert!(!verify("s3cret", "not a hash"));
    }
}
