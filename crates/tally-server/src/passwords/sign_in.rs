//! Wrong passwords at the portal (sign-in, the setup token, the current password on the Account
//! page), limited per client address so that a guesser is refused, and overall so that guessing
//! from many addresses is slowed down. The overall limit never refuses: an administrator signing
//! in from an address of their own gets in while others guess, at worst after [`SLOWDOWN`].
//!
//! | budget | when spent | then |
//! | --- | --- | --- |
//! | the address's ([`PER_ADDRESS`]) | that address is refused until a try is won back |
//! | the overall one ([`OVERALL`]) | every try waits [`SLOWDOWN`] before its check |
//!
//! Like session passwords ([`super::throttle`]), a try takes its cells before the check and gives
//! them back when the password was right: only wrong ones count.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::Budget;
use super::throttle::{Limiter, ServerClock, source_key};

/// Wrong portal passwords from one address (an IPv6 /64): 5 at once, then one per minute.
pub const PER_ADDRESS: Budget = Budget {
    burst: 5,
    every_seconds: 60,
};

/// Wrong portal passwords from all addresses together: 30 at once, then one per 10 s.
pub const OVERALL: Budget = Budget {
    burst: 30,
    every_seconds: 10,
};

/// How long a try waits once the overall budget is spent (on the async timer: no thread waits).
pub const SLOWDOWN: Duration = Duration::from_secs(1);

/// How often, in server seconds, addresses whose budget is whole again are dropped.
const SWEEP_EVERY: i64 = 60;

pub struct SignInThrottle {
    per_address: Limiter<IpAddr>,
    overall: Limiter<()>,
    clock: Arc<dyn tally_core::Clock>,
    last_sweep: AtomicI64,
}

/// A try that may go on: its cells, and whether it must first wait [`SLOWDOWN`].
#[must_use = "dropping a try counts it as a wrong password"]
pub struct SignInTry<'a> {
    throttle: &'a SignInThrottle,
    address: IpAddr,
    overall_cell: bool,
    pub slow: bool,
}

impl SignInTry<'_> {
    /// The password was right: the cells go back.
    pub fn refund(self) {
        self.throttle.per_address.give_back(&self.address);
        if self.overall_cell {
            self.throttle.overall.give_back(&());
        }
    }
}

impl SignInThrottle {
    pub fn new(clock: Arc<dyn tally_core::Clock>) -> Result<Self, String> {
        let on = ServerClock(Arc::clone(&clock));
        Ok(Self {
            per_address: Limiter::new(PER_ADDRESS.quota()?, on.clone()),
            overall: Limiter::new(OVERALL.quota()?, on),
            last_sweep: AtomicI64::new(clock.now()),
            clock,
        })
    }

    /// A try from `address`, or in how many seconds that address may try again.
    pub fn attempt(&self, address: IpAddr) -> Result<SignInTry<'_>, u64> {
        self.sweep_now_and_then();
        let address = source_key(address);
        self.per_address.take(&address)?;
        let overall_cell = self.overall.take(&()).is_ok();
        Ok(SignInTry {
            throttle: self,
            address,
            overall_cell,
            slow: !overall_cell,
        })
    }

    fn sweep_now_and_then(&self) {
        let now = self.clock.now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.abs_diff(last) >= SWEEP_EVERY.unsigned_abs()
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.per_address.sweep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::ManualClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_guessing_address_is_refused_and_another_is_not() {
        let clock = Arc::new(ManualClock::new(1_780_000_000));
        let t = SignInThrottle::new(clock.clone()).unwrap();
        for _ in 0..PER_ADDRESS.burst {
            drop(t.attempt(ip("203.0.113.7")).unwrap());
        }
        assert_eq!(t.attempt(ip("203.0.113.7")).err(), Some(60));
        let admin = t.attempt(ip("198.51.100.1")).unwrap();
        assert!(!admin.slow, "the administrator's address is not held back");
        admin.refund();
        clock.advance(60);
        assert!(
            t.attempt(ip("203.0.113.7")).is_ok(),
            "one try won back a minute later"
        );
    }

    #[test]
    fn right_passwords_do_not_count() {
        let clock = Arc::new(ManualClock::new(1_780_000_000));
        let t = SignInThrottle::new(clock).unwrap();
        for _ in 0..50 {
            t.attempt(ip("198.51.100.1")).unwrap().refund();
        }
        assert!(!t.attempt(ip("198.51.100.1")).unwrap().slow);
    }

    #[test]
    fn guessing_from_many_addresses_slows_every_try_but_refuses_none() {
        let clock = Arc::new(ManualClock::new(1_780_000_000));
        let t = SignInThrottle::new(clock).unwrap();
        for i in 0..OVERALL.burst {
            drop(t.attempt(ip(&format!("203.0.113.{i}"))).unwrap());
        }
        let admin = t
            .attempt(ip("198.51.100.1"))
            .expect("never refused overall");
        assert!(admin.slow, "but slowed down");
        admin.refund();
        let v6 = t.attempt(ip("2001:db8::1")).unwrap();
        drop(v6);
        for _ in 1..PER_ADDRESS.burst {
            drop(t.attempt(ip("2001:db8::2")).unwrap());
        }
        assert!(
            t.attempt(ip("2001:db8::ffff")).is_err(),
            "an IPv6 /64 is one address"
        );
    }
}
