//! License items from the command line (`key=value,…`) or a TOML file (`[[item]]` tables).
//! Every problem is reported with the item and key it concerns, before anything is written.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType, VersionRange};

use super::dates;

/// The keys an item accepts, in either syntax.
const KEYS: &[&str] = &[
    "id", "product", "type", "quantity", "start", "end", "modules", "versions", "grace", "window",
    "metric",
];

/// One item's raw fields, before validation.
#[derive(Debug, Default)]
pub struct RawItem {
    fields: BTreeMap<String, String>,
    modules: Option<Vec<String>>,
}

/// Parses `product=scanner,type=per-device,…`; `modules` is `a+b`.
pub fn parse_spec(spec: &str) -> Result<RawItem, String> {
    let mut raw = RawItem::default();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        if !KEYS.contains(&key) {
            return Err(format!(
                "unknown key `{key}` (expected one of: {})",
                KEYS.join(", ")
            ));
        }
        if key == "modules" {
            raw.modules = Some(
                value
                    .split('+')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            );
        } else if raw
            .fields
            .insert(key.to_owned(), value.to_owned())
            .is_some()
        {
            return Err(format!("key `{key}` is given twice"));
        }
    }
    Ok(raw)
}

/// A TOML item table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlItem {
    id: Option<String>,
    product: Option<String>,
    #[serde(rename = "type")]
    license_type: Option<String>,
    quantity: Option<u64>,
    start: Option<toml::Value>,
    end: Option<toml::Value>,
    modules: Option<Vec<String>>,
    versions: Option<String>,
    grace: Option<u8>,
    window: Option<String>,
    metric: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlItems {
    item: Vec<TomlItem>,
}

fn toml_date(v: toml::Value) -> String {
    match v {
        toml::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Parses a TOML file of `[[item]]` tables.
pub fn parse_toml(text: &str) -> Result<Vec<RawItem>, String> {
    let file: TomlItems = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .item
        .into_iter()
        .map(|t| {
            let mut fields = BTreeMap::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    fields.insert(k.to_owned(), v);
                }
            };
            put("id", t.id);
            put("product", t.product);
            put("type", t.license_type);
            put("quantity", t.quantity.map(|q| q.to_string()));
            put("start", t.start.map(toml_date));
            put("end", t.end.map(toml_date));
            put("versions", t.versions);
            put("grace", t.grace.map(|g| g.to_string()));
            put("window", t.window);
            put("metric", t.metric);
            RawItem {
                fields,
                modules: t.modules,
            }
        })
        .collect())
}

fn required<'a>(raw: &'a RawItem, key: &str) -> Result<&'a str, String> {
    raw.fields
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("`{key}` is required"))
}

fn parse_versions(text: &str) -> Result<VersionRange, String> {
    let (min, max) = text.split_once('-').unwrap_or((text, text));
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("versions: `{text}` is not N or N-M"))
    };
    let range = VersionRange {
        min_major: num(min)?,
        max_major: num(max)?,
    };
    if range.min_major > range.max_major {
        return Err(format!(
            "versions: {} is greater than {}",
            range.min_major, range.max_major
        ));
    }
    Ok(range)
}

/// Validates one raw item; `default_id` is used when it has no `id`.
pub fn build(raw: &RawItem, default_id: String) -> Result<LicenseItem, String> {
    let product = required(raw, "product")?.to_owned();
    if product.is_empty() {
        return Err("`product` is empty".into());
    }
    let license_type: LicenseType = required(raw, "type")?.parse()?;
    let quantity: u64 = required(raw, "quantity")?
        .parse()
        .map_err(|_| "`quantity` must be a whole number".to_owned())?;
    if quantity == 0 {
        return Err("`quantity` must be at least 1".into());
    }
    let start = dates::parse(required(raw, "start")?).map_err(|e| format!("start: {e}"))?;
    let end = dates::parse(required(raw, "end")?).map_err(|e| format!("end: {e}"))?;
    if end <= start {
        return Err("`end` must be after `start`".into());
    }
    let grace_percent = match raw.fields.get("grace") {
        Some(g) => g
            .parse::<u8>()
            .ok()
            .filter(|g| *g <= 100)
            .ok_or("`grace` must be a percentage from 0 to 100")?,
        None => license_type.default_grace_percent(),
    };
    let active_window: ActiveWindow = match raw.fields.get("window") {
        Some(w) => w.parse()?,
        None => ActiveWindow::default(),
    };
    let versions = raw
        .fields
        .get("versions")
        .map(|v| parse_versions(v))
        .transpose()?;
    Ok(LicenseItem {
        id: raw.fields.get("id").cloned().unwrap_or(default_id),
        product,
        versions,
        modules: raw.modules.clone().unwrap_or_default(),
        license_type,
        quantity,
        start,
        end,
        grace_percent,
        active_window,
        metric: raw.fields.get("metric").cloned(),
    })
}

/// Validates all items of a license, numbering default ids `{license_id}-{n}`.
pub fn build_all(raws: &[RawItem], license_id: &str) -> Result<Vec<LicenseItem>, String> {
    if raws.is_empty() {
        return Err("a license needs at least one item (--item or --items)".into());
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(raws.len());
    for (n, raw) in raws.iter().enumerate() {
        let item = build(raw, format!("{license_id}-{}", n + 1))
            .map_err(|e| format!("item {}: {e}", n + 1))?;
        if !seen.insert(item.id.clone()) {
            return Err(format!("item {}: id `{}` is used twice", n + 1, item.id));
        }
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "product=scanner,type=per-device,quantity=5,start=2026-01-01,end=2027-01-01,modules=qr+pdf417,versions=2-3,window=30d";

    #[test]
    fn a_full_spec_builds_an_item() {
        let item = build(&parse_spec(GOOD).unwrap(), "L-1".into()).unwrap();
        assert_eq!(item.id, "L-1");
        assert_eq!(item.modules, ["qr", "pdf417"]);
        assert_eq!(
            item.versions,
            Some(VersionRange {
                min_major: 2,
                max_major: 3
            })
        );
        assert_eq!(item.grace_percent, 10);
        assert_eq!(item.active_window, ActiveWindow::Days30);
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let cases = [
            (
                "product=scanner,type=per-device,quantity=0,start=2026-01-01,end=2027-01-01",
                "quantity",
            ),
            (
                "product=scanner,type=per-seat,quantity=1,start=2026-01-01,end=2027-01-01",
                "license type",
            ),
            (
                "product=scanner,type=per-device,quantity=1,start=2027-01-01,end=2026-01-01",
                "after",
            ),
            (
                "product=scanner,type=per-device,quantity=1,start=2026-01-01",
                "end",
            ),
            (
                "product=scanner,type=per-device,quantity=1,start=2026-01-01,end=2027-01-01,grace=200",
                "grace",
            ),
            (
                "product=scanner,type=per-device,quantity=1,start=2026-01-01,end=2027-01-01,versions=3-2",
                "versions",
            ),
            ("colour=blue", "unknown key"),
        ];
        for (spec, needle) in cases {
            let err = parse_spec(spec)
                .and_then(|r| build(&r, "x".into()))
                .unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn toml_items_and_duplicate_ids() {
        let text = r#"
            [[item]]
            product = "scanner"
            type = "per-usage"
            quantity = 10000
            start = "2026-01-01"
            end = 2027-01-01
            modules = ["qr"]
            [[item]]
            id = "L-1-1"
            product = "viewer"
            type = "per-device"
            quantity = 3
            start = "2026-01-01"
            end = "2027-01-01"
        "#;
        let raws = parse_toml(text).unwrap();
        let err = build_all(&raws, "L-1").unwrap_err();
        assert!(err.contains("used twice"), "{err}");
        let items = build_all(&raws[..1], "L-1").unwrap();
        assert_eq!(items[0].grace_percent, 5);
        assert!(parse_toml("[[item]]\ncolour = 1\n").is_err());
    }
}
