//! Clock rollback detection. A cached grant is only as good as the device clock that checks its
//! expiry, so the highest clock reading ever seen is kept; a clock found clearly behind it
//! (someone turned it back to stretch the grant) refuses offline use.

use serde::{Deserialize, Serialize};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::error::{SdkError, SdkResult};
use crate::state::{CLOCK, StateLock};

/// Clock corrections smaller than this (NTP steps, slightly different sources) are no rollback.
pub const ROLLBACK_TOLERANCE_SECONDS: i64 = 300;

/// The mark is written only when the clock moved at least this far past it, so that frequent
/// calls (`check`, `record_usage`) do not each write a file; detection stays well within the
/// tolerance.
const MARK_STEP_SECONDS: i64 = 60;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct ClockMark {
    high_water: UnixSeconds,
}

/// Records `now` and returns the highest reading seen before it.
pub fn observe(lock: &StateLock<'_>, now: UnixSeconds) -> SdkResult<UnixSeconds> {
    let mark = lock.read::<ClockMark>(CLOCK)?.unwrap_or_default();
    if now >= mark.high_water.saturating_add(MARK_STEP_SECONDS) || mark.high_water == 0 {
        lock.write(CLOCK, &ClockMark { high_water: now })?;
    }
    Ok(mark.high_water)
}

/// A server just vouched for the present: start over from `now`, even if it is earlier.
pub fn reset(lock: &StateLock<'_>, now: UnixSeconds) -> SdkResult<()> {
    lock.write(CLOCK, &ClockMark { high_water: now })
}

/// Refuses `now` when it lies more than the tolerance before `high_water`.
pub fn check(now: UnixSeconds, high_water: UnixSeconds) -> SdkResult<()> {
    if now < high_water.saturating_sub(ROLLBACK_TOLERANCE_SECONDS) {
        return Err(SdkError::new(
            ErrorCode::ClockRollback,
            format!(
                "the device clock reads {now}, {} s before a time already seen ({high_water}); \
                 correct the clock or connect to the server",
                high_water - now
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn the_mark_only_moves_forward_unless_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let lock = state.lock().unwrap();
        assert_eq!(observe(&lock, 1000).unwrap(), 0);
        assert_eq!(observe(&lock, 500).unwrap(), 1000);
        assert_eq!(observe(&lock, 2000).unwrap(), 1000);
        assert_eq!(observe(&lock, 0).unwrap(), 2000);
        // Small steps forward are not written each time.
        assert_eq!(observe(&lock, 2059).unwrap(), 2000);
        assert_eq!(observe(&lock, 2060).unwrap(), 2000);
        assert_eq!(observe(&lock, 2061).unwrap(), 2060);
        reset(&lock, 10).unwrap();
        assert_eq!(observe(&lock, 10).unwrap(), 10);
    }

    #[test]
    fn small_corrections_are_tolerated() {
        assert!(check(1000 - ROLLBACK_TOLERANCE_SECONDS, 1000).is_ok());
        let e = check(1000 - ROLLBACK_TOLERANCE_SECONDS - 1, 1000).unwrap_err();
        assert_eq!(e.code, ErrorCode::ClockRollback);
        assert!(check(5000, 1000).is_ok());
    }
}
