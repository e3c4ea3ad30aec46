//! Rules for usage reports: who may report, and in which slice a report is counted.
//!
//! | rule | why |
//! | --- | --- |
//! | a device reports only while it holds a live registration or seat on the code | usage cannot be charged by a device the server never admitted, or no longer admits |
//! | a report whose slice lies ahead of the server's present slice is counted in the present one | a device whose clock ran ahead loses no usage and blocks no other report |
//! | a per-usage item is used up at its quantity plus grace | the report's answer tells the device to stop |
//! | a report renews every place the device still holds on the code: a seat to the end of the next slice, a per-active-device day not at all, the others one active window; a lapsed place is not revived | a report is a contact |
//! | usage is charged to (and counted per item for) the place held now before one lapsed, then the latest admitted, then the item id | the item the device's grant is for, whatever the row order |
//! | a report from a live concurrent seat records the item's seats beyond its quantity as the slice's exception | overuse within the grace is counted against the yearly allowance in every slice it lasts |

use std::collections::BTreeMap;

use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;

use crate::admission::{device_active_until, seat_until, usage_limit};

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

/// Until when a report at `now` keeps a place of `item` held until `held_until`: renewed when it
/// is still held, never shortened, and a lapsed place stays lapsed (only an admission takes one).
pub fn renewed_until(item: &LicenseItem, held_until: UnixSeconds, now: UnixSeconds) -> UnixSeconds {
    if held_until <= now {
        return held_until;
    }
    let renewed = match item.license_type {
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => seat_until(item, now),
        LicenseType::PerActiveDevice => held_until,
        LicenseType::PerDevice
        | LicenseType::PerInstance
        | LicenseType::PerUsage
        | LicenseType::PerDomain => device_active_until(item, now),
    };
    renewed.max(held_until)
}

/// The order in which a device's places on a code take its usage: the greatest key is charged.
/// A place still held before one that lapsed, then the most recently admitted (the last contact
/// cannot tell, every report moves it on all of them), then the item id, so that the choice never
/// depends on row order.
pub fn charge_key(
    held_until: UnixSeconds,
    admitted_at: UnixSeconds,
    item_id: &str,
    now: UnixSeconds,
) -> (bool, UnixSeconds, &str) {
    (held_until > now, admitted_at, item_id)
}

/// Whether a report at `now` from a device holding a place of `item` until `held_until` looks
/// at the item's seats: a concurrent item's seats held beyond its quantity (the grace an
/// admission allowed) are an exception of the slice, counted against the yearly allowance.
pub fn records_overuse(item: &LicenseItem, held_until: UnixSeconds, now: UnixSeconds) -> bool {
    matches!(
        item.license_type,
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance
    ) && held_until > now
}

/// Seats (or instances) held beyond the item's quantity, if any.
pub fn overuse(item: &LicenseItem, held_units: u64) -> Option<u64> {
    held_units
        .checked_sub(item.quantity)
        .filter(|excess| *excess > 0)
}

/// The usage in `counts` that a per-usage `item` counts (its metric, or every top-level feature).
pub fn charged_usage<'a>(
    item: &LicenseItem,
    counts: impl IntoIterator<Item = &'a BTreeMap<String, u64>>,
) -> u64 {
    counts
        .into_iter()
        .flat_map(|c| c.iter())
        .filter(|(feature, _)| item.counts_feature(feature))
        .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::ActiveWindow;

    fn item(t: LicenseType) -> LicenseItem {
        LicenseItem {
            quantity: 10,
            end: 1_000_000,
            active_window: ActiveWindow::Hours24,
            ..crate::fixtures::item(t)
        }
    }

    #[test]
    fn a_report_renews_places_still_held_and_revives_none() {
        let seat = item(LicenseType::ConcurrentDevice);
        assert_eq!(renewed_until(&seat, 400, 390), 720, "end of the next slice");
        assert_eq!(renewed_until(&seat, 390, 390), 390, "lapsed stays lapsed");
        let day = item(LicenseType::PerActiveDevice);
        assert_eq!(renewed_until(&day, 86_400, 1000), 86_400);
        let device = item(LicenseType::PerDevice);
        assert_eq!(renewed_until(&device, 5000, 1000), 1000 + 86_400);
        assert_eq!(
            renewed_until(&device, 999_999, 990_000),
            1_000_000,
            "never beyond the item's end"
        );
    }

    #[test]
    fn usage_goes_to_the_place_held_now_then_the_latest_admitted() {
        let now = 100;
        let mut keys = [
            charge_key(50, 90, "lapsed-late", now),
            charge_key(200, 10, "held-early", now),
            charge_key(200, 20, "held-late", now),
        ];
        keys.sort();
        assert_eq!(keys[2].2, "held-late");
        assert_eq!(keys[0].2, "lapsed-late");
    }

    #[test]
    fn only_the_metric_or_top_level_features_are_charged() {
        let mut metered = item(LicenseType::PerUsage);
        let counts: BTreeMap<String, u64> = [
            ("scan".to_string(), 3),
            ("scan.qr".to_string(), 2),
            ("page".to_string(), 4),
        ]
        .into();
        assert_eq!(charged_usage(&metered, [&counts]), 7);
        metered.metric = Some("page".into());
        assert_eq!(charged_usage(&metered, [&counts, &counts]), 8);
    }

    #[test]
    fn only_a_place_held_now_allows_reports() {
        assert!(holds_live_place([50, 200].into_iter(), 100));
        assert!(!holds_live_place([50, 100].into_iter(), 100));
        assert!(!holds_live_place(std::iter::empty(), 100));
    }

    #[test]
    fn only_live_concurrent_seats_record_overuse_beyond_the_quantity() {
        let mut seats = item(LicenseType::ConcurrentDevice);
        seats.quantity = 5;
        assert!(records_overuse(&seats, 101, 100));
        assert!(!records_overuse(&seats, 100, 100), "a lapsed seat");
        assert!(!records_overuse(&item(LicenseType::PerDevice), 101, 100));
        assert_eq!(overuse(&seats, 7), Some(2));
        assert_eq!(overuse(&seats, 5), None);
        assert_eq!(overuse(&seats, 0), None);
    }

    #[test]
    fn future_slices_count_in_the_present_one() {
        assert_eq!(counted_slice(5, 180 * 10), 5);
        assert_eq!(counted_slice(10, 180 * 10), 10);
        assert_eq!(counted_slice(11, 180 * 10 + 179), 10);
        assert_eq!(counted_slice(i64::MAX, 180 * 10), 10);
    }
}
