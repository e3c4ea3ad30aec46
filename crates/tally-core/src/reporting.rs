//! Rules for usage reports: who may report, and in which slice a report is counted.
//!
//! | rule | why |
//! | --- | --- |
//! | a device reports only while it holds a live registration or seat on the code | usage cannot be charged by a device the server never admitted, or no longer admits |
//! | a report whose slice lies ahead of the server's present slice is counted in the present one | a device whose clock ran ahead loses no usage and blocks no other report |
//! | a per-usage item is used up at its quantity plus grace | the report's answer tells the device to stop |

use tally_proto::UnixSeconds;
use tally_proto::license::LicenseItem;
use tally_proto::slice::slice_of;

use crate::admission::usage_limit;

/// Whether one of the device's places on the code (their `active_until`) is still held at `now`.
pub fn holds_live_place(
    mut active_until: impl Iterator<Item = UnixSeconds>,
    now: UnixSeconds,
) -> bool {
    active_until.any(|until| until > now)
}

/// The slice a report of `slice` is counted in at server time `now`: its own, or the present
/// slice when it lies in the future.
pub fn counted_slice(slice: i64, now: UnixSeconds) -> i64 {
    slice.min(slice_of(now))
}

/// Whether a per-usage item with `used` counted is used up.
pub fn usage_exhausted(item: &LicenseItem, used: u64) -> bool {
    used >= usage_limit(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_place_held_now_allows_reports() {
        assert!(holds_live_place([50, 200].into_iter(), 100));
        assert!(!holds_live_place([50, 100].into_iter(), 100));
        assert!(!holds_live_place(std::iter::empty(), 100));
    }

    #[test]
    fn future_slices_count_in_the_present_one() {
        assert_eq!(counted_slice(5, 180 * 10), 5);
        assert_eq!(counted_slice(10, 180 * 10), 10);
        assert_eq!(counted_slice(11, 180 * 10 + 179), 10);
        assert_eq!(counted_slice(i64::MAX, 180 * 10), 10);
    }
}
