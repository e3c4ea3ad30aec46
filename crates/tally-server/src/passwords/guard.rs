//! [`PasswordGuard`]: what session-password checks keep between requests, and the check itself,
//! in the order that keeps it cheap: a remembered password passes at once (so it is never
//! throttled, whatever guessers do), then the throttle, and only then Argon2.

use std::net::IpAddr;
use std::sync::Arc;

use tally_proto::ErrorCode;

use super::pool::Argon2Pool;
use super::remembered::Remembered;
use super::throttle::Throttle;
use super::{PER_CODE, PER_SOURCE};
use crate::error::{ApiError, ApiResult};

/// Held in `AppState` as `passwords`.
pub struct PasswordGuard {
    remembered: Remembered,
    argon2: Argon2Pool,
    /// Per source address and per handshake code, on the server's clock.
    throttle: Throttle,
}

impl PasswordGuard {
    pub fn new(clock: Arc<dyn tally_core::Clock>) -> Result<Self, String> {
        Ok(Self {
            remembered: Remembered::new()?,
            argon2: Argon2Pool::new(),
            throttle: Throttle::new(clock, PER_SOURCE.quota()?, PER_CODE.quota()?),
        })
    }

    /// Argon2 verifications run so far (session passwords and the portal's own).
    pub fn argon2_runs(&self) -> u64 {
        self.argon2.verifications()
    }

    /// Hashes a new password with a random salt, off the async workers.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        self.argon2.hash(password).await
    }

    /// Whether `password` matches `stored`, off the async workers. A damaged hash never matches.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, String> {
        self.argon2.verify(password, stored).await
    }

    /// Checks the session password `given` for `code`, whose stored hash is `stored`, asked from
    /// `source`.
    pub async fn check(
        &self,
        code: &str,
        stored: &str,
        given: &str,
        source: IpAddr,
    ) -> ApiResult<()> {
        if self.remembered.knows(code, stored, given) {
            return Ok(());
        }
        let attempt = self.throttle.attempt(code, source).map_err(|t| {
            tracing::info!(code, %source, refusal = %t, "session password try throttled");
            ApiError::new(ErrorCode::TooManyAttempts, t.to_string())
        })?;
        match self.argon2.verify(given, stored).await {
            Ok(true) => {
                attempt.refund();
                self.remembered.remember(code, stored, given);
                Ok(())
            }
            Ok(false) => {
                drop(attempt); // counted
                tracing::info!(code, %source, "wrong session password");
                Err(ApiError::plain(ErrorCode::WrongSessionPassword))
            }
            Err(e) => {
                attempt.refund();
                tracing::error!(error = %e, "cannot check a session password");
                let mut err = ApiError::plain(ErrorCode::Internal);
                err.detail = Some(e);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;
    use argon2::{Algorithm, Argon2, Params, Version};
    use tally_core::ManualClock;

    /// An Argon2id hash with the smallest parameters: the tests count runs, not time.
    fn cheap_hash(password: &str) -> String {
        let params = Params::new(Params::MIN_M_COST, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string()
    }

    fn setup() -> (PasswordGuard, ManualClock) {
        let manual = ManualClock::new(1_780_272_000);
        (
            PasswordGuard::new(Arc::new(manual.clone())).unwrap(),
            manual,
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn code_of(result: ApiResult<()>) -> Option<ErrorCode> {
        result.err().map(|e| e.code)
    }

    #[tokio::test]
    async fn a_verified_password_passes_again_without_argon2() {
        let (g, _) = setup();
        let stored = cheap_hash("right one");
        let a = ip("192.0.2.1");
        g.check("c", &stored, "right one", a).await.unwrap();
        assert_eq!(g.argon2_runs(), 1);
        for _ in 0..5 {
            g.check("c", &stored, "right one", ip("192.0.2.9"))
                .await
                .unwrap();
        }
        assert_eq!(g.argon2_runs(), 1, "the fast path ran no Argon2");
        assert_eq!(
            code_of(g.check("c", &stored, "wrong one", a).await),
            Some(ErrorCode::WrongSessionPassword)
        );
        assert_eq!(g.argon2_runs(), 2);
    }

    #[tokio::test]
    async fn a_changed_hash_makes_the_old_password_wrong_at_once() {
        let (g, _) = setup();
        let a = ip("192.0.2.1");
        let old = cheap_hash("old password");
        g.check("c", &old, "old password", a).await.unwrap();
        let new = cheap_hash("new password");
        assert_eq!(
            code_of(g.check("c", &new, "old password", a).await),
            Some(ErrorCode::WrongSessionPassword)
        );
        g.check("c", &new, "new password", a).await.unwrap();
        let runs = g.argon2_runs();
        g.check("c", &new, "new password", a).await.unwrap();
        assert_eq!(g.argon2_runs(), runs);
    }

    #[tokio::test]
    async fn throttled_tries_run_no_argon2_and_known_passwords_still_pass() {
        let (g, manual) = setup();
        let stored = cheap_hash("right one");
        let (good, bad) = (ip("192.0.2.1"), ip("203.0.113.5"));
        g.check("c", &stored, "right one", good).await.unwrap();
        for _ in 0..PER_SOURCE.burst {
            assert_eq!(
                code_of(g.check("c", &stored, "guess", bad).await),
                Some(ErrorCode::WrongSessionPassword)
            );
        }
        let runs = g.argon2_runs();
        let refused = g.check("c", &stored, "guess", bad).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManyAttempts);
        assert!(
            refused.message.contains("retry in 30 s"),
            "{}",
            refused.message
        );
        assert_eq!(g.argon2_runs(), runs, "a throttled try runs no Argon2");
        // The right password, even from the throttled address, is known: no throttle, no hash.
        g.check("c", &stored, "right one", bad).await.unwrap();
        g.check("c", &stored, "right one", good).await.unwrap();
        assert_eq!(g.argon2_runs(), runs);

        manual.advance(PER_SOURCE.every_seconds as i64);
        assert_eq!(
            code_of(g.check("c", &stored, "guess", bad).await),
            Some(ErrorCode::WrongSessionPassword)
        );
        assert_eq!(
            code_of(g.check("c", &stored, "guess", bad).await),
            Some(ErrorCode::TooManyAttempts)
        );
    }

    #[tokio::test]
    async fn a_right_password_costs_nothing_of_the_budget() {
        let (g, _) = setup();
        let a = ip("192.0.2.1");
        // Right passwords of codes not yet verified: each runs Argon2 once, none counts.
        for n in 0..PER_SOURCE.burst + 5 {
            let stored = cheap_hash("right one");
            g.check(&format!("code-{n}"), &stored, "right one", a)
                .await
                .unwrap();
        }
        let stored = cheap_hash("right one");
        for _ in 0..PER_SOURCE.burst {
            assert_eq!(
                code_of(g.check("x", &stored, "guess", a).await),
                Some(ErrorCode::WrongSessionPassword)
            );
        }
        assert_eq!(
            code_of(g.check("x", &stored, "guess", a).await),
            Some(ErrorCode::TooManyAttempts)
        );
    }

    #[tokio::test]
    async fn a_code_is_throttled_for_guessers_from_many_addresses() {
        let (g, _) = setup();
        let stored = cheap_hash("right one");
        g.check("c", &stored, "right one", ip("192.0.2.1"))
            .await
            .unwrap();
        for n in 0..PER_CODE.burst {
            let from = ip(&format!("10.0.0.{n}"));
            assert_eq!(
                code_of(g.check("c", &stored, "guess", from).await),
                Some(ErrorCode::WrongSessionPassword)
            );
        }
        let runs = g.argon2_runs();
        let refused = g
            .check("c", &stored, "guess", ip("10.0.1.1"))
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManyAttempts);
        assert!(refused.message.contains("handshake code"));
        assert_eq!(g.argon2_runs(), runs);
        g.check("c", &stored, "right one", ip("10.0.1.1"))
            .await
            .unwrap();
    }
}
