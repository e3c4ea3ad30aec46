//! Whether one license item can serve one request.

use tally_proto::UnixSeconds;
use tally_proto::license::LicenseItem;

/// Why an item does not serve a request. Ordered from least to most specific, so that when no item
/// serves, the most telling reason is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mismatch {
    /// Different product, version or modules.
    Product,
    /// The item has not started yet.
    NotYetValid,
    /// The item has ended.
    Expired,
}

/// The product part: same product, version in range, requested modules all unlocked.
pub fn serves_product(
    item: &LicenseItem,
    product: &str,
    version: Option<u32>,
    modules: &[String],
) -> bool {
    if item.product != product {
        return false;
    }
    if let (Some(range), Some(v)) = (item.versions, version)
        && !range.contains(v)
    {
        return false;
    }
    modules
        .iter()
        .all(|m| item.modules.iter().any(|have| have == m))
}

/// The date part: `start <= now < end`.
pub fn time_status(item: &LicenseItem, now: UnixSeconds) -> Result<(), Mismatch> {
    if now < item.start {
        Err(Mismatch::NotYetValid)
    } else if now >= item.end {
        Err(Mismatch::Expired)
    } else {
        Ok(())
    }
}

/// Both parts.
pub fn check(
    item: &LicenseItem,
    product: &str,
    version: Option<u32>,
    modules: &[String],
    now: UnixSeconds,
) -> Result<(), Mismatch> {
    if !serves_product(item, product, version, modules) {
        return Err(Mismatch::Product);
    }
    time_status(item, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::{ActiveWindow, LicenseType, VersionRange};

    fn item() -> LicenseItem {
        LicenseItem {
            id: "i".into(),
            product: "scanner".into(),
            versions: Some(VersionRange {
                min_major: 2,
                max_major: 3,
            }),
            modules: vec!["qr".into(), "pdf417".into()],
            license_type: LicenseType::PerDevice,
            quantity: 1,
            start: 100,
            end: 200,
            grace_percent: 10,
            active_window: ActiveWindow::Days30,
            metric: None,
        }
    }

    #[test]
    fn product_version_and_modules_must_match() {
        let i = item();
        assert_eq!(check(&i, "scanner", Some(2), &["qr".into()], 150), Ok(()));
        assert_eq!(check(&i, "scanner", None, &[], 150), Ok(()));
        assert_eq!(check(&i, "viewer", None, &[], 150), Err(Mismatch::Product));
        assert_eq!(
            check(&i, "scanner", Some(4), &[], 150),
            Err(Mismatch::Product)
        );
        assert_eq!(
            check(&i, "scanner", None, &["ocr".into()], 150),
            Err(Mismatch::Product)
        );
    }

    #[test]
    fn dates_bound_the_item() {
        let i = item();
        assert_eq!(time_status(&i, 99), Err(Mismatch::NotYetValid));
        assert_eq!(time_status(&i, 100), Ok(()));
        assert_eq!(time_status(&i, 199), Ok(()));
        assert_eq!(time_status(&i, 200), Err(Mismatch::Expired));
    }
}
