//! Quota decisions. A store gathers the live state of every candidate item inside one write
//! transaction, asks [`decide`], and writes the outcome in the same transaction, so two
//! simultaneous requests can never both take the last place.

use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};

/// Live quota state of one candidate item, as seen inside the deciding transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemState {
    /// Devices other than the requesting one that are active on the item now.
    pub other_active_devices: u64,
    /// Whether the requesting device is itself active on the item now.
    pub device_active: bool,
}

/// Why a candidate item cannot take the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every place, grace included, is held by other active devices.
    DeviceQuota,
    /// The item's license type is not enforced by this version of the server.
    UnsupportedType(LicenseType),
}

/// Outcome of an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take candidate `index`; the device stays registered until `active_until`.
    Admit {
        index: usize,
        active_until: UnixSeconds,
    },
    /// No candidate can take the device; the refusal of the first candidate is reported.
    Refuse(Refusal),
}

/// Places a per-device item offers: the quantity plus its grace, `round(quantity × grace %)`.
pub fn device_allowance(quantity: u64, grace_percent: u8) -> u64 {
    let grace = (u128::from(quantity) * u128::from(grace_percent) + 50) / 100;
    quantity.saturating_add(u64::try_from(grace).unwrap_or(u64::MAX))
}

/// When a per-device registration made at `now` lapses: one active window later, never after the
/// item's end.
pub fn device_active_until(item: &LicenseItem, now: UnixSeconds) -> UnixSeconds {
    now.saturating_add(item.active_window.seconds())
        .min(item.end)
}

/// Chooses the first candidate, in consumption order, that can take the device. `candidates` are
/// items that already match the request and are within their dates; `states[i]` belongs to
/// `candidates[i]`.
pub fn decide(candidates: &[LicenseItem], states: &[ItemState], now: UnixSeconds) -> Decision {
    let mut first_refusal = None;
    for (index, (item, state)) in candidates.iter().zip(states).enumerate() {
        let verdict = match item.license_type {
            LicenseType::PerDevice => per_device(item, state),
            other => Err(Refusal::UnsupportedType(other)),
        };
        match verdict {
            Ok(()) => {
                return Decision::Admit {
                    index,
                    active_until: device_active_until(item, now),
                };
            }
            Err(r) => {
                first_refusal.get_or_insert(r);
            }
        }
    }
    Decision::Refuse(first_refusal.unwrap_or(Refusal::DeviceQuota))
}

/// Per device: a device already active always keeps its place; a new one needs a free place
/// within quantity + grace.
fn per_device(item: &LicenseItem, state: &ItemState) -> Result<(), Refusal> {
    if state.device_active
        || state.other_active_devices < device_allowance(item.quantity, item.grace_percent)
    {
        Ok(())
    } else {
        Err(Refusal::DeviceQuota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::ActiveWindow;

    fn item(quantity: u64, grace: u8) -> LicenseItem {
        LicenseItem {
            id: "i".into(),
            product: "p".into(),
            versions: None,
            modules: vec![],
            license_type: LicenseType::PerDevice,
            quantity,
            start: 0,
            end: 1_000_000_000,
            grace_percent: grace,
            active_window: ActiveWindow::Days30,
        }
    }

    #[test]
    fn grace_is_rounded_ten_percent() {
        assert_eq!(device_allowance(5, 10), 6);
        assert_eq!(device_allowance(4, 10), 4);
        assert_eq!(device_allowance(100, 10), 110);
        assert_eq!(device_allowance(3, 0), 3);
    }

    #[test]
    fn new_devices_are_refused_beyond_the_allowance_known_ones_stay() {
        let items = [item(2, 0)];
        let full = ItemState {
            other_active_devices: 2,
            device_active: false,
        };
        assert_eq!(
            decide(&items, &[full], 0),
            Decision::Refuse(Refusal::DeviceQuota)
        );
        let known = ItemState {
            other_active_devices: 2,
            device_active: true,
        };
        assert!(matches!(
            decide(&items, &[known], 0),
            Decision::Admit { index: 0, .. }
        ));
        let room = ItemState {
            other_active_devices: 1,
            device_active: false,
        };
        assert!(matches!(
            decide(&items, &[room], 0),
            Decision::Admit { index: 0, .. }
        ));
    }

    #[test]
    fn the_next_item_serves_when_the_first_is_full() {
        let items = [item(1, 0), item(1, 0)];
        let states = [
            ItemState {
                other_active_devices: 1,
                device_active: false,
            },
            ItemState::default(),
        ];
        assert!(matches!(
            decide(&items, &states, 0),
            Decision::Admit { index: 1, .. }
        ));
    }

    #[test]
    fn registration_is_capped_by_item_end() {
        let mut i = item(1, 0);
        i.end = 100;
        assert_eq!(device_active_until(&i, 50), 100);
        i.end = i64::MAX;
        assert_eq!(device_active_until(&i, 50), 50 + 30 * 86_400);
    }
}
