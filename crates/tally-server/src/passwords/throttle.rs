//! Wrong session passwords, limited per source address and per handshake code, so that guessing
//! is slow and cannot keep the Argon2 pool busy: a throttled try is refused before any hashing.
//! governor's GCRA decides, on the server's injected clock so that tests can move time.
//!
//! A try takes one cell of each budget before Argon2 runs and gives both back when the password
//! turns out right: only wrong passwords count, and concurrent guesses cannot outrun the budget.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};

use super::cells::Cells;

/// `burst` wrong passwords at once, then one more every `every_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub burst: u32,
    pub every_seconds: u64,
}

impl Budget {
    pub fn quota(self) -> Result<Quota, String> {
        let burst =
            NonZeroU32::new(self.burst).ok_or("a password budget needs a burst of 1 or more")?;
        Quota::with_period(Duration::from_secs(self.every_seconds))
            .map(|q| q.allow_burst(burst))
            .ok_or_else(|| "a password budget needs a period of 1 s or more".to_owned())
    }
}

/// How often, in server seconds, keys whose budget is whole again are dropped.
const SWEEP_EVERY: u64 = 60;

pub struct Throttle {
    per_source: Limiter<IpAddr>,
    per_code: Limiter<String>,
    clock: Arc<dyn tally_core::Clock>,
    last_sweep: AtomicI64,
}

/// A refused try, and how many seconds until the next one may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    Source { retry_in: u64 },
    Code { retry_in: u64 },
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source { retry_in } => write!(
                f,
                "too many wrong session passwords came from this address: retry in {retry_in} s"
            ),
            Self::Code { retry_in } => write!(
                f,
                "too many wrong session passwords were tried on this handshake code: retry in {retry_in} s"
            ),
        }
    }
}

/// A try holding one cell of each budget until its password is known. Dropped, it keeps them:
/// a wrong password (or a request abandoned while its hash ran) counts.
#[must_use = "dropping an attempt counts it as a wrong password"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    source: IpAddr,
    code: String,
}

impl Attempt<'_> {
    /// The password was not wrong: both cells go back.
    pub fn refund(self) {
        self.throttle.per_code.give_back(&self.code);
        self.throttle.per_source.give_back(&self.source);
    }
}

impl Throttle {
    pub fn new(clock: Arc<dyn tally_core::Clock>, per_source: Quota, per_code: Quota) -> Self {
        let on = ServerClock(Arc::clone(&clock));
        Self {
            per_source: Limiter::new(per_source, on.clone()),
            per_code: Limiter::new(per_code, on),
            last_sweep: AtomicI64::new(clock.now()),
            clock,
        }
    }

    /// Takes a cell for a try of a password on `code` from `source`, or says when to retry.
    /// The code's budget is asked first, so that an address already refused leaves the code's
    /// budget untouched (its cell goes back) and keys are only made for tries that may run.
    pub fn attempt(&self, code: &str, source: IpAddr) -> Result<Attempt<'_>, Throttled> {
        self.sweep_now_and_then();
        let source = source_key(source);
        let code = code.to_owned();
        self.per_code
            .take(&code)
            .map_err(|retry_in| Throttled::Code { retry_in })?;
        if let Err(retry_in) = self.per_source.take(&source) {
            self.per_code.give_back(&code);
            return Err(Throttled::Source { retry_in });
        }
        Ok(Attempt {
            throttle: self,
            source,
            code,
        })
    }

    /// Keeps the keyed states bounded: a key whose budget is whole again is dropped.
    fn sweep_now_and_then(&self) {
        let now = self.clock.now();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.abs_diff(last) >= SWEEP_EVERY
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.per_source.sweep();
            self.per_code.sweep();
        }
    }

    #[cfg(test)]
    pub fn keys(&self) -> usize {
        self.per_source.governor.len() + self.per_code.governor.len()
    }
}

/// The budget key of an address: IPv4 as is; IPv6 by its /64, which one client usually holds
/// whole (an address with IPv4 inside counts as that IPv4 address).
pub(super) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (u128::MAX << 64))),
        },
    }
}

/// One keyed GCRA limiter and the store it keeps its cells in.
pub(super) struct Limiter<K: Hash + Eq + Clone> {
    governor: RateLimiter<K, Cells<K>, ServerClock, NoOpMiddleware<Nanos>>,
    cells: Cells<K>,
    /// What one cell weighs: the time the budget takes to win it back.
    cell: Nanos,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub(super) fn new(quota: Quota, clock: ServerClock) -> Self {
        let cells = Cells::new();
        Self {
            governor: RateLimiter::new(quota, cells.clone(), clock),
            cells,
            cell: Nanos::from(quota.replenish_interval()),
        }
    }

    /// Takes a cell, or answers in how many whole seconds one is free.
    pub(super) fn take(&self, key: &K) -> Result<(), u64> {
        self.governor.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(self.governor.clock()));
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    pub(super) fn give_back(&self, key: &K) {
        self.cells.give_back(key, self.cell);
    }

    pub(super) fn sweep(&self) {
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
    }
}

/// The server's clock (whole Unix seconds) as governor reads it, in nanoseconds.
#[derive(Clone)]
pub(super) struct ServerClock(pub(super) Arc<dyn tally_core::Clock>);

impl governor::clock::Clock for ServerClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let seconds = u64::try_from(self.0.now()).unwrap_or(0);
        Nanos::from(seconds.saturating_mul(1_000_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passwords::{PER_CODE, PER_SOURCE};
    use tally_core::ManualClock;

    fn throttle() -> (Throttle, ManualClock) {
        let clock = ManualClock::new(1_780_272_000);
        let t = Throttle::new(
            Arc::new(clock.clone()),
            PER_SOURCE.quota().unwrap(),
            PER_CODE.quota().unwrap(),
        );
        (t, clock)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Wrong tries (attempts dropped) of `code` from `source` until refused; how many passed.
    fn wrong_until_refused(t: &Throttle, code: &str, source: IpAddr) -> (u32, Throttled) {
        for n in 0.. {
            match t.attempt(code, source) {
                Ok(_wrong) => {}
                Err(refused) => return (n, refused),
            }
        }
        unreachable!()
    }

    #[test]
    fn an_address_gets_its_burst_then_one_try_per_period() {
        let (t, clock) = throttle();
        let a = ip("192.0.2.1");
        // Distinct codes: only the address's budget is at stake.
        for n in 0..PER_SOURCE.burst {
            drop(t.attempt(&format!("code-{n}"), a).unwrap());
        }
        let every = PER_SOURCE.every_seconds;
        assert_eq!(
            t.attempt("another", a).err(),
            Some(Throttled::Source { retry_in: every })
        );
        clock.advance(every as i64 - 1);
        assert_eq!(
            t.attempt("another", a).err(),
            Some(Throttled::Source { retry_in: 1 })
        );
        clock.advance(1);
        drop(t.attempt("another", a).unwrap());
        assert!(t.attempt("another", a).is_err());
        assert!(t.attempt("another", ip("192.0.2.2")).is_ok(), "per address");
    }

    #[test]
    fn a_code_gets_its_burst_from_all_addresses_together() {
        let (t, clock) = throttle();
        for n in 0..PER_CODE.burst {
            drop(
                t.attempt("shared", ip(&format!("10.0.{}.{}", n / 200, n % 200)))
                    .unwrap(),
            );
        }
        assert_eq!(
            t.attempt("shared", ip("10.9.9.9")).err(),
            Some(Throttled::Code {
                retry_in: PER_CODE.every_seconds
            })
        );
        assert!(t.attempt("other", ip("10.9.9.9")).is_ok(), "per code");
        clock.advance(PER_CODE.every_seconds as i64);
        drop(t.attempt("shared", ip("10.9.9.9")).unwrap());
        assert!(t.attempt("shared", ip("10.9.9.10")).is_err());
    }

    #[test]
    fn right_passwords_cost_nothing() {
        let (t, _clock) = throttle();
        let a = ip("192.0.2.1");
        for _ in 0..100 {
            t.attempt("c", a).unwrap().refund();
        }
        assert_eq!(wrong_until_refused(&t, "c", a).0, PER_SOURCE.burst);
    }

    #[test]
    fn an_address_refused_spends_nothing_of_the_code() {
        let (t, _clock) = throttle();
        let a = ip("192.0.2.1");
        let (passed, refused) = wrong_until_refused(&t, "c", a);
        assert_eq!(passed, PER_SOURCE.burst);
        assert!(matches!(refused, Throttled::Source { .. }));
        for _ in 0..100 {
            assert!(t.attempt("c", a).is_err());
        }
        let mut others = 0;
        for n in 0.. {
            match t.attempt("c", ip(&format!("198.51.100.{n}"))) {
                Ok(_wrong) => others += 1,
                Err(refused) => {
                    assert!(matches!(refused, Throttled::Code { .. }));
                    break;
                }
            }
        }
        assert_eq!(others + PER_SOURCE.burst, PER_CODE.burst);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let (t, _clock) = throttle();
        for n in 0..PER_SOURCE.burst {
            drop(t.attempt("c", ip(&format!("2001:db8::{n:x}"))).unwrap());
        }
        assert!(t.attempt("c", ip("2001:db8::ffff")).is_err());
        assert!(t.attempt("c", ip("2001:db8:0:1::1")).is_ok());
        assert_eq!(source_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn keys_whose_budget_is_whole_again_are_dropped() {
        let (t, clock) = throttle();
        for n in 0..50 {
            drop(
                t.attempt(&format!("code-{n}"), ip(&format!("10.1.0.{n}")))
                    .unwrap(),
            );
        }
        assert_eq!(t.keys(), 100);
        clock.advance((PER_SOURCE.every_seconds + SWEEP_EVERY) as i64);
        let _ = t.attempt("fresh", ip("10.2.0.1"));
        assert_eq!(t.keys(), 2, "only the try that swept remains");
    }

    #[test]
    fn refusals_say_when_to_retry() {
        let text = Throttled::Source { retry_in: 30 }.to_string();
        assert!(text.contains("retry in 30 s"), "{text}");
        let text = Throttled::Code { retry_in: 2 }.to_string();
        assert!(text.contains("handshake code") && text.contains("retry in 2 s"));
    }
}
