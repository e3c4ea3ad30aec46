//! License items as a vendor writes them and as a server reads them back. Mode 0: one
//! `--item key=value,…` spec; mode 1: an `--items` TOML file of `[[item]]` tables; mode 2: the
//! JSON of an item as the stores keep it (`parse_item`). Every item that parses is then put
//! through the core rules a server applies to it at a realistic clock (dates, grace, places,
//! offline days, allowance years, usage limits), where an overflow would panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_core::{admission, matching, reporting, validity};
use tally_fuzz::item_spec;
use tally_fuzz::{NOW, mode};
use tally_proto::license::LicenseItem;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = mode(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let items = match mode % 3 {
        0 => item_spec::parse_spec(text, 1)
            .and_then(|raw| item_spec::build(&raw, "L-1-1".into()))
            .map(|item| vec![item]),
        1 => item_spec::parse_toml(text, "items.toml")
            .and_then(|raws| item_spec::build_all(&raws, "L-1")),
        _ => serde_json::from_str::<LicenseItem>(text)
            .map(|item| vec![item])
            .map_err(|e| e.to_string()),
    };
    let Ok(items) = items else {
        return;
    };
    for item in &items {
        if mode % 3 != 2 {
            // What the vendor issues survives the trip through the stores' JSON unchanged.
            let json = serde_json::to_string(item).expect("an item serializes");
            let back: LicenseItem = serde_json::from_str(&json).expect("an item reads back");
            assert_eq!(&back, item);
        }
        apply_rules(item);
    }
});

/// The rules the server applies to an item it authorizes on or charges usage to.
fn apply_rules(item: &LicenseItem) {
    let _ = item.grace_end();
    let _ = admission::usage_limit(item);
    let _ = admission::exception_allowance(item);
    for now in [
        NOW,
        item.start.clamp(0, 4_000_000_000),
        item.end.clamp(0, 4_000_000_000),
    ] {
        let modules = item.modules.clone();
        let version = item.versions.map(|v| v.min_major);
        let Ok(_standing) = matching::check(item, &item.product, version, &modules, now) else {
            continue;
        };
        // Within the item's dates, as every admission and report is.
        let active_until = admission::device_active_until(item, now);
        let seat_until = admission::seat_until(item, now);
        let _ = admission::allowance_year_start(item, now);
        for held_until in [active_until, seat_until] {
            let _ = reporting::renewed_until(item, held_until, now);
            for asked in [None, Some(1), Some(u32::MAX)] {
                let days = validity::offline_days(item, Some(3650), asked);
                let local = validity::local_validity(item, held_until, now, days, None);
                assert!(local.valid_until <= item.grace_end());
            }
        }
    }
}
