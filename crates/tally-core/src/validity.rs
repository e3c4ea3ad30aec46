//! How long a device may use a grant by itself, and when it renews it. The server decides and
//! signs both; the SDK enforces them.
//!
//! | license type | the device may use the grant until | it renews at |
//! | --- | --- | --- |
//! | concurrent device / instance | its seat's end + [`SEAT_TOLERANCE_SECONDS`] | the start of the seat's last slice |
//! | per active device | the end of the UTC day + [`SEAT_TOLERANCE_SECONDS`] | midnight UTC |
//! | per device, per instance, per usage, per domain | now + the offline days | half-way, at most a day later |
//!
//! Never beyond the item's grace end (or a public trial's end). The offline days are the
//! licensor's cap on the item, lowered by the server's setting and by what the client asks:
//! see [`offline_days`].

use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::SLICE_SECONDS;

/// Seconds a device may keep using a short-lived place (a concurrent seat, a per-active-device
/// day) after its end: the renewal on its way, clocks a little apart. With a seat lasting to the
/// end of the next 3-minute slice, a seat that is not renewed is used 4 to 7 minutes locally.
pub const SEAT_TOLERANCE_SECONDS: i64 = 60;

/// The longest a device waits between two renewals of a long-lived grant.
pub const MAX_RENEW_INTERVAL_SECONDS: i64 = 86_400;

/// Offline days for a grant of `item`: the item's cap, lowered by the server's cap and by what
/// the client asks; at least one day.
pub fn offline_days(item: &LicenseItem, server_cap: Option<u32>, asked: Option<u32>) -> u32 {
    [Some(item.offline_days_cap()), server_cap, asked]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(tally_proto::DEFAULT_OFFLINE_DAYS)
        .max(1)
}

/// What a grant says about its own use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalValidity {
    /// The device may use the grant until then.
    pub valid_until: UnixSeconds,
    /// The device renews the grant from then on.
    pub renew_at: UnixSeconds,
}

/// The local validity of a grant of `item` issued at `now`, for a place the admission holds until
/// `held_until`, with `offline_days` from [`offline_days`]; `cap` is a further end (a public
/// trial's).
pub fn local_validity(
    item: &LicenseItem,
    held_until: UnixSeconds,
    now: UnixSeconds,
    offline_days: u32,
    cap: Option<UnixSeconds>,
) -> LocalValidity {
    let end = cap.map_or(item.grace_end(), |c| c.min(item.grace_end()));
    let (valid_until, renew_at) = match item.license_type {
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => (
            held_until.saturating_add(SEAT_TOLERANCE_SECONDS),
            held_until.saturating_sub(SLICE_SECONDS),
        ),
        LicenseType::PerActiveDevice => (
            held_until.saturating_add(SEAT_TOLERANCE_SECONDS),
            held_until,
        ),
        LicenseType::PerDevice
        | LicenseType::PerInstance
        | LicenseType::PerUsage
        | LicenseType::PerDomain => {
            let until = now.saturating_add(i64::from(offline_days).saturating_mul(86_400));
            let half = (until.min(end) - now) / 2;
            (
                until,
                now.saturating_add(half.min(MAX_RENEW_INTERVAL_SECONDS)),
            )
        }
    };
    let valid_until = valid_until.min(end);
    LocalValidity {
        valid_until,
        renew_at: renew_at.clamp(now, valid_until.max(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn item(t: LicenseType) -> LicenseItem {
        LicenseItem {
            grace_days: None,
            ..crate::fixtures::item(t)
        }
    }

    #[test]
    fn the_licensor_caps_the_offline_days_and_others_only_lower_them() {
        let mut i = item(LicenseType::PerDevice);
        assert_eq!(offline_days(&i, None, None), 7);
        assert_eq!(offline_days(&i, None, Some(3650)), 7);
        assert_eq!(offline_days(&i, None, Some(2)), 2);
        assert_eq!(offline_days(&i, Some(3), Some(5)), 3);
        i.max_offline_days = Some(30);
        assert_eq!(offline_days(&i, None, Some(3650)), 30);
        assert_eq!(offline_days(&i, Some(14), None), 14);
        assert_eq!(offline_days(&i, None, Some(0)), 1);
    }

    #[test]
    fn long_lived_grants_last_the_offline_days_and_renew_within_a_day() {
        let v = local_validity(&item(LicenseType::PerDevice), 30 * DAY, 10 * DAY, 7, None);
        assert_eq!(v.valid_until, 17 * DAY);
        assert_eq!(v.renew_at, 11 * DAY);
        let v = local_validity(&item(LicenseType::PerUsage), 30 * DAY, 10 * DAY, 1, None);
        assert_eq!(v.renew_at, 10 * DAY + DAY / 2);
    }

    #[test]
    fn a_seat_is_used_until_its_end_plus_the_tolerance_and_renewed_a_slice_before() {
        let i = item(LicenseType::ConcurrentDevice);
        // Taken at 100 s into a slice: held to the end of the next slice.
        let v = local_validity(&i, 360, 100, 7, None);
        assert_eq!(v.valid_until, 420);
        assert_eq!(v.renew_at, 180);
    }

    #[test]
    fn per_active_device_grants_end_with_the_utc_day() {
        let v = local_validity(&item(LicenseType::PerActiveDevice), DAY, 3600, 7, None);
        assert_eq!(v.valid_until, DAY + SEAT_TOLERANCE_SECONDS);
        assert_eq!(v.renew_at, DAY);
    }

    #[test]
    fn nothing_lasts_beyond_the_grace_end_or_the_cap() {
        let mut i = item(LicenseType::PerDevice);
        i.end = 10 * DAY;
        i.grace_days = Some(2);
        let v = local_validity(&i, 12 * DAY, 9 * DAY, 7, None);
        assert_eq!(v.valid_until, 12 * DAY);
        assert_eq!(v.renew_at, 10 * DAY);
        let v = local_validity(&i, 12 * DAY, 9 * DAY, 7, Some(9 * DAY + 100));
        assert_eq!(v.valid_until, 9 * DAY + 100);
        assert_eq!(v.renew_at, 9 * DAY + 50);
    }
}
