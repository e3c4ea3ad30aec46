//! Session passwords of handshake codes: stored as Argon2id PHC strings, never in clear, and
//! checked on every device authorization of their code, so the check must neither cost an Argon2
//! run each time nor let guessers stall the server:
//!
//! * [`remembered`]: a password verified once passes next time on a keyed digest;
//! * [`throttle`] (over [`cells`]): wrong passwords are limited per address and per code;
//! * [`pool`]: Argon2 runs off the async workers, a few at a time (also for the portal's own
//!   administrator password);
//! * [`guard`]: [`PasswordGuard`], which ties them together in that order.

mod cells;
mod guard;
mod pool;
mod remembered;
mod throttle;

pub use guard::PasswordGuard;
pub use throttle::Budget;

use crate::error::ApiResult;
use crate::state::AppState;

/// Wrong session passwords from one address (an IPv6 /64): 10 at once, then one per 30 s.
pub const PER_SOURCE: Budget = Budget {
    burst: 10,
    every_seconds: 30,
};

/// Wrong session passwords on one handshake code, from all addresses together: 30 at once, then
/// one per 2 s. Larger than an address's, so one guesser cannot lock a code for everyone.
pub const PER_CODE: Budget = Budget {
    burst: 30,
    every_seconds: 2,
};

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
