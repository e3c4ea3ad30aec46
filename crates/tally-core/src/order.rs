//! Default consumption order of the items on a handshake code: closest expiry first, then the most
//! specific (fewest modules, a version range), then the least restrictive (largest quantity).
//! An admin-chosen order replaces it.

use tally_proto::license::LicenseItem;

/// Sorts `items` into the default consumption order. The sort is stable and ends on the item id,
/// so the order is the same on every node.
pub fn default_order(items: &mut [LicenseItem]) {
    default_order_with(items, |i| i);
}

/// Sorts any list whose elements carry an item (e.g. `(license id, item)` pairs).
pub fn default_order_with<T>(items: &mut [T], item: impl Fn(&T) -> &LicenseItem) {
    items.sort_by(|a, b| {
        let (a, b) = (item(a), item(b));
        a.end
            .cmp(&b.end)
            .then_with(|| b.versions.is_some().cmp(&a.versions.is_some()))
            .then_with(|| a.modules.len().cmp(&b.modules.len()))
            .then_with(|| b.quantity.cmp(&a.quantity))
            .then_with(|| a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::LicenseType;

    fn item(id: &str, end: i64, modules: usize, quantity: u64) -> LicenseItem {
        LicenseItem {
            id: id.into(),
            modules: (0..modules).map(|m| format!("m{m}")).collect(),
            quantity,
            end,
            ..crate::fixtures::item(LicenseType::PerDevice)
        }
    }

    #[test]
    fn closest_expiry_then_specific_then_least_restrictive() {
        let mut items = vec![
            item("late", 300, 0, 1),
            item("wide", 200, 3, 1),
            item("big", 200, 1, 9),
            item("small", 200, 1, 2),
        ];
        default_order(&mut items);
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["big", "small", "wide", "late"]);
    }
}
