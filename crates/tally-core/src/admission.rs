//! Quota decisions for every license type. A store gathers the live state of every candidate
//! item inside one write transaction, asks [`decide`], and writes the outcome in the same
//! transaction, so two simultaneous requests can never both take the last place.
//!
//! | type | counted | a new device is admitted while | holds until |
//! | --- | --- | --- | --- |
//! | per device | devices with an active registration | others < quantity + grace | last contact + window |
//! | per active device | devices admitted today (UTC) | others today < quantity + grace | end of the day |
//! | concurrent device | seats held now | seats + 1 ≤ quantity, or ≤ quantity + grace while the yearly exception allowance lasts | end of the next slice |
//! | concurrent instance | instances held now | the same, counting the device's instances | end of the next slice |
//! | per instance | instances with an active registration | others + instances ≤ quantity + grace | last contact + window |
//! | per usage | usage counted in the item's period | used < quantity + grace | last contact + window |
//! | per domain | distinct domains with an active registration | the domain is known, or others < quantity | last contact + window |
//!
//! A device that already holds its place keeps it (only concurrency and usage can refuse it).

use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::{slice_end, slice_of};

/// Exception slices a concurrent item may use per year, per unit of quantity.
pub const EXCEPTIONS_PER_UNIT_PER_YEAR: u64 = 1000;

/// What the request asks for beyond the device itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ask {
    /// Running instances on the device (instance-counted types); at least 1.
    pub instances: u64,
    /// The validation-field domain (per-domain items).
    pub domain: Option<String>,
}

/// Live quota state of one candidate item, as seen inside the deciding transaction. Fields that
/// do not concern the item's type are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemState {
    /// Devices other than the requesting one with an active registration.
    pub other_active_devices: u64,
    /// Whether the requesting device has an active registration.
    pub device_active: bool,
    /// Devices other than the requesting one admitted today (per active device).
    pub other_devices_today: u64,
    pub device_seen_today: bool,
    /// Seats (instances, for instance types) held now by other devices.
    pub other_units: u64,
    /// Exception slices recorded in the current allowance year (concurrent types).
    pub exceptions_this_year: u64,
    /// Usage counted so far in the item's period (per usage).
    pub usage_used: u64,
    /// Distinct active domains other than the requested one (per domain).
    pub other_domains: u64,
    /// Whether the requested domain already holds a place.
    pub domain_known: bool,
}

/// Why a candidate item cannot take the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every place, grace included, is held by other devices.
    DeviceQuota,
    /// The usage quota, grace included, is used up.
    UsageQuota,
    /// Every seat is held and no exception allowance is left.
    Seats,
    /// Every domain place is held by other domains.
    DomainQuota,
    /// A per-domain item needs the request's domain.
    DomainMissing,
}

/// Outcome of an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take candidate `index` until `active_until`, holding `units` seats or instances;
    /// `exception` is the overuse (units beyond the quantity) to record for the current slice.
    Admit {
        index: usize,
        active_until: UnixSeconds,
        units: u64,
        exception: u64,
    },
    /// No candidate can take the device; the refusal of the first candidate is reported.
    Refuse(Refusal),
}

/// `round(quantity × percent / 100)`, halves rounded up.
pub fn grace_units(quantity: u64, percent: u8) -> u64 {
    let g = (u128::from(quantity) * u128::from(percent) + 50) / 100;
    u64::try_from(g).unwrap_or(u64::MAX)
}

/// Places an item offers: its quantity plus its grace.
pub fn device_allowance(quantity: u64, grace_percent: u8) -> u64 {
    quantity.saturating_add(grace_units(quantity, grace_percent))
}

/// When a registration made at `now` lapses: one active window later, never after the item's
/// grace end.
pub fn device_active_until(item: &LicenseItem, now: UnixSeconds) -> UnixSeconds {
    now.saturating_add(item.active_window.seconds())
        .min(item.grace_end())
}

/// A concurrent seat taken or renewed at `now` lasts to the end of the next slice.
pub fn seat_until(item: &LicenseItem, now: UnixSeconds) -> UnixSeconds {
    slice_end(slice_of(now) + 1).min(item.grace_end())
}

/// End of the UTC day containing `now`.
pub fn end_of_day(now: UnixSeconds) -> UnixSeconds {
    (now.div_euclid(86_400) + 1) * 86_400
}

/// Start of the current allowance year of `item` (years counted from the item's start).
pub fn allowance_year_start(item: &LicenseItem, now: UnixSeconds) -> UnixSeconds {
    const YEAR: i64 = 365 * 86_400;
    // In i128: a signed item may carry any start (found by fuzzing, target `item_spec`). The
    // result lies between the start and `now`, so it fits back.
    let (start, now) = (i128::from(item.start), i128::from(now));
    let years = (now - start).max(0) / i128::from(YEAR);
    i64::try_from(start + years * i128::from(YEAR)).unwrap_or(item.start)
}

/// Exception slices allowed per year.
pub fn exception_allowance(item: &LicenseItem) -> u64 {
    item.quantity.saturating_mul(EXCEPTIONS_PER_UNIT_PER_YEAR)
}

/// Usage an item accepts before it refuses every device: quantity + grace.
pub fn usage_limit(item: &LicenseItem) -> u64 {
    device_allowance(item.quantity, item.grace_percent)
}

/// Chooses the first candidate, in consumption order, that can take the device. `candidates`
/// already match the request and are within their dates; `states[i]` belongs to `candidates[i]`.
pub fn decide(
    candidates: &[LicenseItem],
    states: &[ItemState],
    ask: &Ask,
    now: UnixSeconds,
) -> Decision {
    let mut first_refusal = None;
    for (index, (item, state)) in candidates.iter().zip(states).enumerate() {
        match admit(item, state, ask, now) {
            Ok((active_until, units, exception)) => {
                return Decision::Admit {
                    index,
                    active_until,
                    units,
                    exception,
                };
            }
            Err(r) => {
                first_refusal.get_or_insert(r);
            }
        }
    }
    Decision::Refuse(first_refusal.unwrap_or(Refusal::DeviceQuota))
}

/// One item's verdict: `(active_until, units held, exception units)`.
fn admit(
    item: &LicenseItem,
    s: &ItemState,
    ask: &Ask,
    now: UnixSeconds,
) -> Result<(UnixSeconds, u64, u64), Refusal> {
    let allowance = device_allowance(item.quantity, item.grace_percent);
    let instances = ask.instances.max(1);
    match item.license_type {
        LicenseType::PerDevice => {
            if s.device_active || s.other_active_devices < allowance {
                Ok((device_active_until(item, now), 1, 0))
            } else {
                Err(Refusal::DeviceQuota)
            }
        }
        LicenseType::PerActiveDevice => {
            if s.device_seen_today || s.other_devices_today < allowance {
                Ok((end_of_day(now).min(item.grace_end()), 1, 0))
            } else {
                Err(Refusal::DeviceQuota)
            }
        }
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => {
            let units = if item.license_type == LicenseType::ConcurrentDevice {
                1
            } else {
                instances
            };
            let held = s.other_units.saturating_add(units);
            if held <= item.quantity {
                return Ok((seat_until(item, now), units, 0));
            }
            let excess = held - item.quantity;
            let within_overuse = held <= allowance;
            let allowance_left =
                s.exceptions_this_year.saturating_add(excess) <= exception_allowance(item);
            if within_overuse && allowance_left {
                Ok((seat_until(item, now), units, excess))
            } else {
                Err(Refusal::Seats)
            }
        }
        LicenseType::PerInstance => {
            if s.other_units.saturating_add(instances) <= allowance {
                Ok((device_active_until(item, now), instances, 0))
            } else {
                Err(Refusal::DeviceQuota)
            }
        }
        LicenseType::PerUsage => {
            if s.usage_used < usage_limit(item) {
                Ok((device_active_until(item, now), 1, 0))
            } else {
                Err(Refusal::UsageQuota)
            }
        }
        LicenseType::PerDomain => {
            if ask.domain.as_deref().is_none_or(str::is_empty) {
                Err(Refusal::DomainMissing)
            } else if s.domain_known || s.other_domains < item.quantity {
                Ok((device_active_until(item, now), 1, 0))
            } else {
                Err(Refusal::DomainQuota)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: LicenseType, quantity: u64, grace: u8) -> LicenseItem {
        LicenseItem {
            quantity,
            grace_percent: grace,
            end: 1_000_000_000,
            ..crate::fixtures::item(t)
        }
    }

    fn one(i: LicenseItem, s: ItemState, ask: &Ask) -> Decision {
        decide(&[i], &[s], ask, 1000)
    }

    fn admitted(d: Decision) -> bool {
        matches!(d, Decision::Admit { .. })
    }

    #[test]
    fn grace_is_rounded_percent() {
        assert_eq!(device_allowance(5, 10), 6);
        assert_eq!(device_allowance(4, 10), 4);
        assert_eq!(device_allowance(100, 10), 110);
        assert_eq!(device_allowance(100, 5), 105);
        assert_eq!(device_allowance(3, 0), 3);
    }

    #[test]
    fn per_device_refuses_new_devices_beyond_the_allowance_and_keeps_known_ones() {
        let i = item(LicenseType::PerDevice, 2, 0);
        let ask = Ask::default();
        let full = ItemState {
            other_active_devices: 2,
            ..Default::default()
        };
        assert_eq!(
            one(i.clone(), full, &ask),
            Decision::Refuse(Refusal::DeviceQuota)
        );
        let known = ItemState {
            device_active: true,
            ..full
        };
        assert!(admitted(one(i.clone(), known, &ask)));
        let room = ItemState {
            other_active_devices: 1,
            ..Default::default()
        };
        assert!(admitted(one(i, room, &ask)));
    }

    #[test]
    fn per_active_device_counts_today_and_holds_to_midnight() {
        let i = item(LicenseType::PerActiveDevice, 1, 0);
        let ask = Ask::default();
        let full = ItemState {
            other_devices_today: 1,
            ..Default::default()
        };
        assert_eq!(
            one(i.clone(), full, &ask),
            Decision::Refuse(Refusal::DeviceQuota)
        );
        match one(i, ItemState::default(), &ask) {
            Decision::Admit { active_until, .. } => assert_eq!(active_until, 86_400),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn concurrent_seats_last_to_the_end_of_the_next_slice_and_overuse_is_bounded() {
        let i = item(LicenseType::ConcurrentDevice, 10, 10);
        let ask = Ask::default();
        match one(
            i.clone(),
            ItemState {
                other_units: 9,
                ..Default::default()
            },
            &ask,
        ) {
            Decision::Admit {
                active_until,
                units,
                exception,
                ..
            } => {
                assert_eq!((active_until, units, exception), (1260, 1, 0));
            }
            other => panic!("{other:?}"),
        }
        // The 11th seat is an exception while the yearly allowance lasts.
        let over = ItemState {
            other_units: 10,
            ..Default::default()
        };
        assert!(matches!(
            one(i.clone(), over, &ask),
            Decision::Admit { exception: 1, .. }
        ));
        let spent = ItemState {
            exceptions_this_year: 10_000,
            ..over
        };
        assert_eq!(
            one(i.clone(), spent, &ask),
            Decision::Refuse(Refusal::Seats)
        );
        let beyond = ItemState {
            other_units: 11,
            ..Default::default()
        };
        assert_eq!(one(i, beyond, &ask), Decision::Refuse(Refusal::Seats));
    }

    #[test]
    fn instance_types_count_the_declared_instances() {
        let ask = Ask {
            instances: 3,
            domain: None,
        };
        let c = item(LicenseType::ConcurrentInstance, 4, 0);
        assert_eq!(
            one(
                c.clone(),
                ItemState {
                    other_units: 2,
                    ..Default::default()
                },
                &ask
            ),
            Decision::Refuse(Refusal::Seats)
        );
        assert!(matches!(
            one(
                c,
                ItemState {
                    other_units: 1,
                    ..Default::default()
                },
                &ask
            ),
            Decision::Admit { units: 3, .. }
        ));
        let p = item(LicenseType::PerInstance, 4, 0);
        assert_eq!(
            one(
                p.clone(),
                ItemState {
                    other_units: 2,
                    ..Default::default()
                },
                &ask
            ),
            Decision::Refuse(Refusal::DeviceQuota)
        );
        assert!(admitted(one(
            p,
            ItemState {
                other_units: 1,
                ..Default::default()
            },
            &ask
        )));
    }

    #[test]
    fn per_usage_refuses_everyone_at_quantity_plus_five_percent() {
        let i = item(LicenseType::PerUsage, 100, 5);
        let ask = Ask::default();
        assert!(admitted(one(
            i.clone(),
            ItemState {
                usage_used: 104,
                ..Default::default()
            },
            &ask
        )));
        let spent = ItemState {
            usage_used: 105,
            device_active: true,
            ..Default::default()
        };
        assert_eq!(one(i, spent, &ask), Decision::Refuse(Refusal::UsageQuota));
    }

    #[test]
    fn per_domain_counts_distinct_domains() {
        let i = item(LicenseType::PerDomain, 2, 0);
        let ask = Ask {
            instances: 1,
            domain: Some("a.example".into()),
        };
        let full = ItemState {
            other_domains: 2,
            ..Default::default()
        };
        assert_eq!(
            one(i.clone(), full, &ask),
            Decision::Refuse(Refusal::DomainQuota)
        );
        assert!(admitted(one(
            i.clone(),
            ItemState {
                domain_known: true,
                ..full
            },
            &ask
        )));
        assert_eq!(
            one(i, ItemState::default(), &Ask::default()),
            Decision::Refuse(Refusal::DomainMissing)
        );
    }

    #[test]
    fn the_next_item_serves_when_the_first_is_full() {
        let items = [
            item(LicenseType::PerDevice, 1, 0),
            item(LicenseType::PerDevice, 1, 0),
        ];
        let states = [
            ItemState {
                other_active_devices: 1,
                ..Default::default()
            },
            ItemState::default(),
        ];
        assert!(matches!(
            decide(&items, &states, &Ask::default(), 0),
            Decision::Admit { index: 1, .. }
        ));
    }

    #[test]
    fn registrations_are_capped_by_item_end() {
        let mut i = item(LicenseType::PerDevice, 1, 0);
        i.end = 100;
        assert_eq!(device_active_until(&i, 50), 100);
        assert_eq!(seat_until(&i, 50), 100);
        i.end = i64::MAX;
        assert_eq!(device_active_until(&i, 50), 50 + 30 * 86_400);
    }

    #[test]
    fn allowance_years_start_at_the_item_start() {
        let mut i = item(LicenseType::ConcurrentDevice, 1, 0);
        i.start = 100;
        assert_eq!(
            allowance_year_start(&i, 100 + 365 * 86_400 + 5),
            100 + 365 * 86_400
        );
        assert_eq!(allowance_year_start(&i, 50), 100);
    }

    /// Found by fuzzing (`fuzz/`, target `item_spec`): an item starting at the far end of the
    /// calendar used to overflow instead of giving an allowance year at or before `now`.
    #[test]
    fn allowance_years_of_extreme_starts_do_not_overflow() {
        let mut i = item(LicenseType::ConcurrentDevice, 1, 0);
        let now = 1_800_000_000;
        i.start = i64::MIN;
        let year = allowance_year_start(&i, now);
        assert!(year <= now && now - year < 365 * 86_400 * 2, "{year}");
        i.start = i64::MAX;
        assert_eq!(allowance_year_start(&i, now), i64::MAX);
    }
}
