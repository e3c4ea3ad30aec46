//! Usage alerts, edge-triggered: each watched quantity has a level (the highest threshold it has
//! crossed); an alert is due when a level rises above the one last notified. Levels that fall
//! are remembered lower, so crossing again later alerts again.

use tally_proto::UnixSeconds;

/// Item usage thresholds, percent of the quantity.
pub const USAGE_THRESHOLDS: [u64; 3] = [60, 80, 100];
/// Failed-authorization ratio thresholds per handshake code, percent over the last hour.
pub const FAILURE_THRESHOLDS: [u64; 6] = [10, 20, 40, 60, 80, 100];
/// Expiry warnings, days before the end.
pub const EXPIRY_DAYS: [i64; 3] = [30, 7, 1];

/// The level of `percent` against `thresholds`: 0 below the first, i + 1 at or above the i-th.
fn level_of(percent: u64, thresholds: &[u64]) -> u8 {
    thresholds.iter().take_while(|t| percent >= **t).count() as u8
}

/// Usage level of an item (0–3 for 60/80/100 %).
pub fn usage_level(used: u64, quantity: u64) -> u8 {
    if quantity == 0 {
        return 0;
    }
    let percent = used.saturating_mul(100) / quantity;
    level_of(percent, &USAGE_THRESHOLDS)
}

/// Failure-ratio level of a code (0–6), or 0 when it saw no request.
pub fn failure_level(ok: u64, failed: u64) -> u8 {
    let total = ok + failed;
    if total == 0 {
        return 0;
    }
    level_of(failed * 100 / total, &FAILURE_THRESHOLDS)
}

/// Expiry level: 0 far away, 1 within 30 days, 2 within 7, 3 within 1, 4 ended (devices work in
/// the grace after the end), 5 the grace is over too.
pub fn expiry_level(end: UnixSeconds, grace_end: UnixSeconds, now: UnixSeconds) -> u8 {
    if now >= grace_end.max(end) {
        return 5;
    }
    if now >= end {
        return 4;
    }
    let left = end - now;
    EXPIRY_DAYS
        .iter()
        .take_while(|d| left <= **d * 86_400)
        .count() as u8
}

/// Words for a level, for the alert text.
pub fn describe(kind: Kind, level: u8) -> String {
    let i = usize::from(level.saturating_sub(1));
    match kind {
        Kind::Usage => format!(
            "usage reached {} %",
            USAGE_THRESHOLDS.get(i).copied().unwrap_or(100)
        ),
        Kind::Grace => "entered its grace allowance".to_owned(),
        Kind::Failures => format!(
            "{} % or more of the authorizations in the last hour failed",
            FAILURE_THRESHOLDS.get(i).copied().unwrap_or(100)
        ),
        Kind::Expiry => match level {
            5 => "has expired and its grace is over: devices are refused".to_owned(),
            4 => "has ended: devices keep working during its grace days".to_owned(),
            l => format!(
                "expires within {} days",
                EXPIRY_DAYS.get(usize::from(l - 1)).copied().unwrap_or(1)
            ),
        },
    }
}

/// What a level measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Usage,
    Grace,
    Failures,
    Expiry,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::Grace => "grace",
            Kind::Failures => "failures",
            Kind::Expiry => "expiry",
        }
    }
}

/// Whether moving from `previous` (last notified) to `current` calls for an alert.
pub fn crossed(previous: u8, current: u8) -> bool {
    current > previous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_levels() {
        assert_eq!(usage_level(59, 100), 0);
        assert_eq!(usage_level(60, 100), 1);
        assert_eq!(usage_level(80, 100), 2);
        assert_eq!(usage_level(100, 100), 3);
        assert_eq!(usage_level(110, 100), 3);
        assert_eq!(usage_level(3, 5), 1);
        assert_eq!(usage_level(1, 0), 0);
    }

    #[test]
    fn failure_levels() {
        assert_eq!(failure_level(0, 0), 0);
        assert_eq!(failure_level(91, 9), 0);
        assert_eq!(failure_level(90, 10), 1);
        assert_eq!(failure_level(50, 50), 3);
        assert_eq!(failure_level(0, 3), 6);
    }

    #[test]
    fn expiry_levels() {
        let day = 86_400;
        let grace = 7 * day;
        assert_eq!(expiry_level(100 * day, 100 * day + grace, 0), 0);
        assert_eq!(expiry_level(30 * day, 30 * day + grace, 0), 1);
        assert_eq!(expiry_level(7 * day, 7 * day + grace, 0), 2);
        assert_eq!(expiry_level(day, day + grace, 0), 3);
        assert_eq!(expiry_level(0, grace, 0), 4);
        assert_eq!(expiry_level(0, grace, grace - 1), 4);
        assert_eq!(expiry_level(0, grace, grace), 5);
        assert_eq!(expiry_level(0, 0, 0), 5);
        assert_eq!(describe(Kind::Expiry, 2), "expires within 7 days");
        assert_eq!(describe(Kind::Usage, 2), "usage reached 80 %");
    }

    #[test]
    fn only_rises_alert() {
        assert!(crossed(0, 1));
        assert!(!crossed(2, 2));
        assert!(!crossed(3, 1));
    }
}
