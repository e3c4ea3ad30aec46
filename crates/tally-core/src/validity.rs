//! How long a grant may be used offline.

use tally_proto::{MIN_BUFFER_DAYS, UnixSeconds};

/// `valid_until = min(earliest end of the granted items, now + buffer days)`, with the buffer never
/// below [`MIN_BUFFER_DAYS`].
pub fn grant_valid_until(
    now: UnixSeconds,
    buffer_days: u32,
    items_end: UnixSeconds,
) -> UnixSeconds {
    let days = i64::from(buffer_days.max(MIN_BUFFER_DAYS));
    items_end.min(now.saturating_add(days * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_at_least_seven_days_and_capped_by_expiry() {
        assert_eq!(grant_valid_until(0, 7, i64::MAX), 7 * 86_400);
        assert_eq!(grant_valid_until(0, 1, i64::MAX), 7 * 86_400);
        assert_eq!(grant_valid_until(0, 30, i64::MAX), 30 * 86_400);
        assert_eq!(grant_valid_until(0, 30, 1000), 1000);
    }
}
