//! Password operations on the state's guard (`crate::passwords`): the session password of a
//! handshake code, and hashing and checking the portal's administrator password.

use crate::error::ApiResult;
use crate::state::AppState;

/// Checks the session password `given` for handshake code `code`, whose stored hash is `stored`,
/// asked from `source`. `WrongSessionPassword` when it does not match, `TooManyAttempts` (no
/// Argon2 run) while `source` or `code` has used up its budget of wrong passwords.
pub async fn check(
    state: &AppState,
    code: &str,
    stored: &str,
    given: &str,
    source: std::net::IpAddr,
) -> ApiResult<()> {
    state.passwords.check(code, stored, given, source).await
}

/// Hashes a new password with a random salt, off the async workers.
pub async fn hash(state: &AppState, password: &str) -> Result<String, String> {
    state.passwords.hash(password).await
}

/// Whether `password` matches the stored hash, off the async workers. A damaged hash never
/// matches; `Err` only when the hashing pool failed.
pub async fn verify(state: &AppState, password: &str, stored: &str) -> Result<bool, String> {
    state.passwords.verify(password, stored).await
}
