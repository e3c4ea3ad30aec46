//! The password guard the state holds (it uses no state itself): session passwords of handshake
//! codes are stored as Argon2id PHC strings, never in clear, and checked on every device
//! authorization of their code, so the check must neither cost an Argon2 run each time nor let
//! guessers stall the server:
//!
//! * [`remembered`]: a password verified once passes next time on a keyed digest;
//! * [`throttle`] (over [`cells`]): wrong passwords are limited per address and per code;
//! * [`pool`]: Argon2 runs off the async workers, a few at a time (also for the portal's own
//!   administrator password);
//! * [`guard`]: [`PasswordGuard`], which ties them together in that order;
//! * [`sign_in`]: the portal's own passwords (sign-in, setup token, current password), limited
//!   per address and slowed, never refused, overall.

mod cells;
mod guard;
mod pool;
mod remembered;
mod sign_in;
mod throttle;

pub use guard::PasswordGuard;
pub use sign_in::{SLOWDOWN, SignInThrottle, SignInTry};
pub use throttle::Budget;

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
