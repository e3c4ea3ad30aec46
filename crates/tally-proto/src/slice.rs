//! Time slices: usage is counted per 3-minute slice on absolute UTC boundaries (480 a day).

use crate::UnixSeconds;

/// Length of one slice in seconds.
pub const SLICE_SECONDS: i64 = 180;

/// Slices in one UTC day.
pub const SLICES_PER_DAY: i64 = 86_400 / SLICE_SECONDS;

/// Index of the slice containing `t` (slice 0 starts at the Unix epoch).
pub fn slice_of(t: UnixSeconds) -> i64 {
    t.div_euclid(SLICE_SECONDS)
}

/// First second of slice `index`.
pub fn slice_start(index: i64) -> UnixSeconds {
    index.saturating_mul(SLICE_SECONDS)
}

/// First second after slice `index`.
pub fn slice_end(index: i64) -> UnixSeconds {
    slice_start(index.saturating_add(1))
}

/// Day number (days since the epoch, UTC) of the slice `index`.
pub fn day_of_slice(index: i64) -> i64 {
    index.div_euclid(SLICES_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_absolute_utc_boundaries() {
        assert_eq!(SLICES_PER_DAY, 480);
        assert_eq!(slice_of(0), 0);
        assert_eq!(slice_of(179), 0);
        assert_eq!(slice_of(180), 1);
        assert_eq!(slice_of(-1), -1);
        assert_eq!(slice_end(slice_of(200)), 360);
        assert_eq!(day_of_slice(479), 0);
        assert_eq!(day_of_slice(480), 1);
    }
}
