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
    /// The item has ended, and its grace after the end too.
    Expired,
}

/// Where an item that serves a request stands in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Between its start and its end.
    Current,
    /// Ended, but within its grace days: it still authorizes, with a grace status, and only when
    /// no current item can serve.
    Grace,
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

/// The date part: current while `start <= now < end`, in grace while `end <= now < grace end`.
pub fn time_status(item: &LicenseItem, now: UnixSeconds) -> Result<Standing, Mismatch> {
    if now < item.start {
        Err(Mismatch::NotYetValid)
    } else if now >= item.grace_end() {
        Err(Mismatch::Expired)
    } else if now >= item.end {
        Ok(Standing::Grace)
    } else {
        Ok(Standing::Current)
    }
}

/// Both parts.
pub fn check(
    item: &LicenseItem,
    product: &str,
    version: Option<u32>,
    modules: &[String],
    now: UnixSeconds,
) -> Result<Standing, Mismatch> {
    if !serves_product(item, product, version, modules) {
        return Err(Mismatch::Product);
    }
    time_status(item, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::{LicenseType, VersionRange};

    fn item() -> LicenseItem {
        LicenseItem {
            product: "scanner".into(),
            versions: Some(VersionRange {
                min_major: 2,
                max_major: 3,
            }),
            modules: vec!["qr".into(), "pdf417".into()],
            start: 100,
            end: 200,
            grace_percent: 10,
            grace_days: Some(2),
            ..crate::fixtures::item(LicenseType::PerDevice)
        }
    }

    #[test]
    fn product_version_and_modules_must_match() {
        let i = item();
        let current = Ok(Standing::Current);
        assert_eq!(check(&i, "scanner", Some(2), &["qr".into()], 150), current);
        assert_eq!(check(&i, "scanner", None, &[], 150), current);
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
    fn dates_bound_the_item_and_grace_follows_its_end() {
        let i = item();
        let grace_end = 200 + 2 * 86_400;
        assert_eq!(time_status(&i, 99), Err(Mismatch::NotYetValid));
        assert_eq!(time_status(&i, 100), Ok(Standing::Current));
        assert_eq!(time_status(&i, 199), Ok(Standing::Current));
        assert_eq!(time_status(&i, 200), Ok(Standing::Grace));
        assert_eq!(time_status(&i, grace_end - 1), Ok(Standing::Grace));
        assert_eq!(time_status(&i, grace_end), Err(Mismatch::Expired));
    }
}
