//! A license item for the rule tests: each test changes the fields its rule looks at.

use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType};

/// One unit of `license_type` for product `p`, from 0 for a thousand days, no grace of any kind,
/// a 30-day window.
pub fn item(license_type: LicenseType) -> LicenseItem {
    LicenseItem {
        id: "i".into(),
        product: "p".into(),
        versions: None,
        modules: vec![],
        license_type,
        quantity: 1,
        start: 0,
        end: 1000 * 86_400,
        grace_percent: 0,
        active_window: ActiveWindow::Days30,
        metric: None,
        max_offline_days: None,
        grace_days: Some(0),
    }
}
