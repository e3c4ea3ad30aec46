//! The retry schedule of alert deliveries (an email, a webhook): a failed attempt is tried again
//! after a wait that doubles from a minute up to an hour, until the delivery succeeds or a day has
//! passed since the alert. A mail server down for an afternoon still gets the alert; one gone for
//! good stops being tried.

use tally_proto::UnixSeconds;

/// Wait after the first failed attempt.
pub const FIRST_RETRY_SECONDS: i64 = 60;
/// Longest wait between two attempts.
pub const LONGEST_RETRY_SECONDS: i64 = 3_600;
/// How long after the alert a delivery is still tried.
pub const GIVE_UP_AFTER_SECONDS: i64 = 86_400;

/// The wait after `failed` failed attempts (1 for the first): 60 s doubled at each further
/// failure, at most an hour.
pub fn retry_delay(failed: u32) -> i64 {
    let doublings = failed.saturating_sub(1).min(16);
    FIRST_RETRY_SECONDS
        .saturating_mul(1_i64 << doublings)
        .min(LONGEST_RETRY_SECONDS)
}

/// When to try again a delivery of an alert raised at `raised_at` whose attempt number `failed`
/// (counting from 1) just failed at `now`; `None` when a day has passed and it is given up.
pub fn next_attempt(raised_at: UnixSeconds, failed: u32, now: UnixSeconds) -> Option<UnixSeconds> {
    let at = now.saturating_add(retry_delay(failed));
    (at <= raised_at.saturating_add(GIVE_UP_AFTER_SECONDS)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_a_minute_up_to_an_hour() {
        let waits: Vec<i64> = (1..=8).map(retry_delay).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(0), 60);
        assert_eq!(retry_delay(u32::MAX), 3600);
    }

    #[test]
    fn a_delivery_is_retried_for_a_day_then_given_up() {
        let raised = 1_000_000;
        assert_eq!(next_attempt(raised, 1, raised), Some(raised + 60));
        // Following the schedule from the first failure, the last attempt falls within the day.
        let (mut now, mut failed, mut attempts) = (raised, 1, 1);
        while let Some(at) = next_attempt(raised, failed, now) {
            assert!(at > now && at <= raised + GIVE_UP_AFTER_SECONDS);
            now = at;
            failed += 1;
            attempts += 1;
        }
        assert!(now > raised + GIVE_UP_AFTER_SECONDS - LONGEST_RETRY_SECONDS);
        // Seven attempts in the first hour, then one an hour.
        assert_eq!(attempts, 29);
        assert_eq!(
            next_attempt(raised, 3, raised + GIVE_UP_AFTER_SECONDS),
            None
        );
        assert_eq!(next_attempt(i64::MAX - 5, 1, i64::MAX - 1), Some(i64::MAX));
    }
}
