//! License items from `--item key=value,…` specs or a TOML file of `[[item]]` tables. Both
//! syntaxes are first read into the same raw form and then go through one validation, so the
//! rules and the error messages cannot drift apart. Every error names the item and the key.

use std::collections::{BTreeMap, HashMap};

use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType, VersionRange};

use super::dates;

/// The keys an item accepts, in either syntax.
const KEYS: &[&str] = &[
    "id",
    "product",
    "type",
    "quantity",
    "start",
    "end",
    "modules",
    "versions",
    "grace",
    "window",
    "metric",
    "offline",
    "grace_days",
];

/// The keys every item must have.
const REQUIRED: &[&str] = &["product", "type", "quantity", "start", "end"];

/// One item as the vendor wrote it, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawItem {
    /// Where the item came from (`--item #2`, `items.toml [[item]] #1`), for error messages.
    origin: String,
    fields: BTreeMap<&'static str, String>,
    modules: Option<Vec<String>>,
}

impl RawItem {
    fn new(origin: String) -> Self {
        Self {
            origin,
            ..Self::default()
        }
    }

    /// Stores one value, refusing unknown and repeated keys.
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let key = self.known_key(key)?;
        if key == "modules" {
            let modules = value.split('+').map(|m| m.trim().to_owned()).collect();
            return self.set_modules(modules);
        }
        if self.fields.insert(key, value).is_some() {
            return Err(format!("{}: `{key}` is given twice", self.origin));
        }
        Ok(())
    }

    fn known_key(&self, key: &str) -> Result<&'static str, String> {
        KEYS.iter().find(|k| **k == key).copied().ok_or_else(|| {
            format!(
                "{}: unknown key `{key}` (expected one of: {})",
                self.origin,
                KEYS.join(", ")
            )
        })
    }

    fn set_modules(&mut self, modules: Vec<String>) -> Result<(), String> {
        if self.modules.replace(modules).is_some() {
            return Err(format!("{}: `modules` is given twice", self.origin));
        }
        Ok(())
    }

    /// The item as named in errors: where it came from, and its id when the vendor gave one.
    fn label(&self) -> String {
        match self.fields.get("id") {
            Some(id) => format!("{} (id `{id}`)", self.origin),
            None => self.origin.clone(),
        }
    }
}

/// Parses one `--item` spec; `n` is its 1-based position on the command line.
pub fn parse_spec(spec: &str, n: usize) -> Result<RawItem, String> {
    let mut raw = RawItem::new(format!("--item #{n}"));
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{}: `{part}` is not key=value", raw.origin))?;
        raw.set(key.trim(), value.trim().to_owned())?;
    }
    Ok(raw)
}

/// Parses a TOML file of `[[item]]` tables; `file` names it in errors.
pub fn parse_toml(text: &str, file: &str) -> Result<Vec<RawItem>, String> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{file}: invalid TOML: {e}"))?;
    let items = table.remove("item");
    if let Some(key) = table.keys().next() {
        return Err(format!(
            "{file}: unknown top-level key `{key}` (items are `[[item]]` tables)"
        ));
    }
    let items = match items {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            return Err(format!(
                "{file}: `item` must be written as `[[item]]` tables"
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let origin = format!("{file} [[item]] #{}", i + 1);
            let toml::Value::Table(item) = item else {
                return Err(format!("{origin}: not a table"));
            };
            let mut raw = RawItem::new(origin);
            for (key, value) in item {
                read_toml_value(&mut raw, &key, value)?;
            }
            Ok(raw)
        })
        .collect()
}

/// Converts one TOML value to the raw text form, accepting the natural TOML types of each key
/// (numbers for `quantity`, bare dates for `start`, a list for `modules`).
fn read_toml_value(raw: &mut RawItem, key: &str, value: toml::Value) -> Result<(), String> {
    use toml::Value as V;
    raw.known_key(key)?;
    let wrong = |expected: &str| format!("{}: `{key}` must be {expected}", raw.label());
    let text = match (key, value) {
        ("modules", V::Array(list)) => {
            let modules = list
                .into_iter()
                .map(|m| match m {
                    V::String(s) => Ok(s.trim().to_owned()),
                    _ => Err(wrong("a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return raw.set_modules(modules);
        }
        ("modules", _) => return Err(wrong("a list of strings")),
        ("start" | "end", V::Datetime(d)) => d.to_string(),
        ("start" | "end", V::String(s)) => s,
        ("start" | "end", _) => return Err(wrong("a date (YYYY-MM-DD or RFC 3339)")),
        ("quantity" | "grace" | "versions" | "offline" | "grace_days", V::Integer(n)) => {
            n.to_string()
        }
        ("quantity" | "grace" | "offline" | "grace_days", V::String(s)) => s,
        ("quantity" | "grace" | "offline" | "grace_days", _) => {
            return Err(wrong("a whole number"));
        }
        (_, V::String(s)) => s,
        (_, _) => return Err(wrong("a string")),
    };
    raw.set(key, text.trim().to_owned())
}

/// Validates one raw item; `default_id` is its id when it has none.
pub fn build(raw: &RawItem, default_id: String) -> Result<LicenseItem, String> {
    let label = raw.label();
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|k| raw.fields.get(**k).is_none_or(|v| v.is_empty()))
        .map(|k| format!("`{k}`"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("{label}: missing {}", missing.join(", ")));
    }
    let field = |key: &str| raw.fields.get(key).map(String::as_str).unwrap_or_default();
    let bad = |key: &str, problem: String| format!("{label}: `{key}` {problem}");

    let license_type: LicenseType = field("type")
        .parse()
        .map_err(|e: String| format!("{label}: `type`: {e}"))?;
    let quantity: u64 = field("quantity").parse().map_err(|_| {
        bad(
            "quantity",
            format!("must be a whole number, not `{}`", field("quantity")),
        )
    })?;
    if quantity == 0 {
        return Err(bad("quantity", "must be at least 1".into()));
    }
    let start = dates::parse(field("start")).map_err(|e| format!("{label}: `start`: {e}"))?;
    let end = dates::parse(field("end")).map_err(|e| format!("{label}: `end`: {e}"))?;
    if end <= start {
        return Err(bad(
            "end",
            format!(
                "({}) must be after `start` ({})",
                dates::show(end),
                dates::show(start)
            ),
        ));
    }
    let grace_percent = match raw.fields.get("grace") {
        None => license_type.default_grace_percent(),
        Some(g) => g.parse::<u8>().ok().filter(|g| *g <= 100).ok_or_else(|| {
            bad(
                "grace",
                format!("must be a percentage from 0 to 100, not `{g}`"),
            )
        })?,
    };
    let active_window = match raw.fields.get("window") {
        None => ActiveWindow::default(),
        Some(w) => w
            .parse()
            .map_err(|e: String| format!("{label}: `window`: {e}"))?,
    };
    let versions = match raw.fields.get("versions") {
        None => None,
        Some(v) => Some(parse_versions(v).map_err(|e| bad("versions", e))?),
    };
    let modules = raw.modules.clone().unwrap_or_default();
    if modules.iter().any(String::is_empty) {
        return Err(bad("modules", "has an empty module name".into()));
    }
    if let Some(m) = modules
        .iter()
        .enumerate()
        .find_map(|(i, m)| modules[..i].contains(m).then_some(m))
    {
        return Err(bad("modules", format!("lists `{m}` twice")));
    }
    let metric = raw.fields.get("metric").cloned();
    if metric.is_some() && license_type != LicenseType::PerUsage {
        return Err(bad(
            "metric",
            format!(
                "only applies to per-usage items, not {}",
                license_type.as_str()
            ),
        ));
    }
    if metric.as_deref() == Some("") {
        return Err(bad("metric", "is empty".into()));
    }
    let days = |key: &str, least: u32| -> Result<Option<u32>, String> {
        raw.fields
            .get(key)
            .map(|d| {
                d.parse::<u32>()
                    .ok()
                    .filter(|d| (least..=tally_proto::MAX_OFFLINE_DAYS).contains(d))
                    .ok_or_else(|| {
                        bad(
                            key,
                            format!(
                                "must be a number of days from {least} to {}, not `{d}`",
                                tally_proto::MAX_OFFLINE_DAYS
                            ),
                        )
                    })
            })
            .transpose()
    };
    let max_offline_days = days("offline", 1)?;
    let grace_days = days("grace_days", 0)?;
    let id = raw.fields.get("id").cloned().unwrap_or(default_id);
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(bad(
            "id",
            format!("`{id}` must be non-empty and without spaces"),
        ));
    }
    Ok(LicenseItem {
        id,
        product: field("product").to_owned(),
        versions,
        modules,
        license_type,
        quantity,
        start,
        end,
        grace_percent,
        active_window,
        metric,
        max_offline_days,
        grace_days,
    })
}

/// `N` or `N-M`: an inclusive range of major versions.
fn parse_versions(text: &str) -> Result<VersionRange, String> {
    let (min, max) = text.split_once('-').unwrap_or((text, text));
    let major = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("must be a major version N or a range N-M, not `{text}`"))
    };
    let (min_major, max_major) = (major(min)?, major(max)?);
    if min_major > max_major {
        return Err(format!("`{text}`: {min_major} is greater than {max_major}"));
    }
    Ok(VersionRange {
        min_major,
        max_major,
    })
}

/// Validates all items of a license, numbering default ids `{license_id}-{n}` (1-based) in the
/// order given, and refuses an empty list and repeated ids.
pub fn build_all(raws: &[RawItem], license_id: &str) -> Result<Vec<LicenseItem>, String> {
    if raws.is_empty() {
        return Err("a license needs at least one item (give --item SPEC or --items FILE)".into());
    }
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut items = Vec::with_capacity(raws.len());
    for (n, raw) in raws.iter().enumerate() {
        let item = build(raw, format!("{license_id}-{}", n + 1))?;
        if let Some(first) = seen.insert(item.id.clone(), &raw.origin) {
            return Err(format!(
                "{}: item id `{}` is already used by {first}",
                raw.origin, item.id
            ));
        }
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "product=scanner,type=per-device,quantity=5,start=2026-01-01,\
                        end=2027-01-01,modules=qr+pdf417,versions=2-3,window=30d";

    fn one(spec: &str) -> Result<LicenseItem, String> {
        build(&parse_spec(spec, 1)?, "L-1-1".into())
    }

    #[test]
    fn a_full_spec_builds_an_item() {
        let item = one(GOOD).unwrap();
        assert_eq!(item.id, "L-1-1");
        assert_eq!(item.product, "scanner");
        assert_eq!(item.license_type, LicenseType::PerDevice);
        assert_eq!(item.quantity, 5);
        assert_eq!(item.start, 1_767_225_600);
        assert_eq!(item.end, 1_798_761_600);
        assert_eq!(item.modules, ["qr", "pdf417"]);
        assert_eq!(
            item.versions,
            Some(VersionRange {
                min_major: 2,
                max_major: 3
            })
        );
        assert_eq!(item.grace_percent, 10, "default of per-device");
        assert_eq!(item.active_window, ActiveWindow::Days30);
        assert_eq!(item.metric, None);
        assert_eq!((item.max_offline_days, item.grace_days), (None, None));
    }

    #[test]
    fn offline_days_and_grace_days_are_whole_days_in_range() {
        let item = one(&format!("{GOOD},offline=30,grace_days=0")).unwrap();
        assert_eq!(
            (item.max_offline_days, item.grace_days),
            (Some(30), Some(0))
        );
        for (extra, key) in [
            ("offline=0", "`offline`"),
            ("offline=3651", "`offline`"),
            ("offline=a week", "`offline`"),
            ("grace_days=-1", "`grace_days`"),
        ] {
            let e = one(&format!("{GOOD},{extra}")).unwrap_err();
            assert!(e.contains(key) && e.contains("days"), "{extra}: {e}");
        }
        let raws = parse_toml(
            "[[item]]\nproduct = \"p\"\ntype = \"per-device\"\nquantity = 1\n\
             start = 2026-01-01\nend = 2027-01-01\noffline = 14\ngrace_days = 3\n",
            "items.toml",
        )
        .unwrap();
        let item = build(&raws[0], "L-1-1".into()).unwrap();
        assert_eq!(
            (item.max_offline_days, item.grace_days),
            (Some(14), Some(3))
        );
    }

    #[test]
    fn defaults_and_explicit_values() {
        let item = one(
            "product=scanner, type=per-usage, quantity=100, start=2026-01-01T00:00:00Z, \
             end=2026-06-30, grace=0, versions=4, id=X-9, metric=scan",
        )
        .unwrap();
        assert_eq!(item.id, "X-9");
        assert_eq!(item.grace_percent, 0);
        assert_eq!(item.active_window, ActiveWindow::Days365);
        assert_eq!(
            item.versions.map(|v| (v.min_major, v.max_major)),
            Some((4, 4))
        );
        assert_eq!(item.metric.as_deref(), Some("scan"));
        assert!(item.modules.is_empty());
        let item =
            one("product=p,type=per-active-device,quantity=1,start=2026-01-01,end=2026-01-02")
                .unwrap();
        assert_eq!(item.grace_percent, 0, "default of per-active-device");
    }

    #[test]
    fn bad_specs_name_the_item_and_the_key() {
        let base = "product=scanner,type=per-device,start=2026-01-01,end=2027-01-01";
        let cases = [
            (
                format!("{base},quantity=0"),
                "`quantity` must be at least 1",
            ),
            (
                format!("{base},quantity=-1"),
                "`quantity` must be a whole number",
            ),
            (
                format!("{base},quantity=5,grace=101"),
                "`grace` must be a percentage",
            ),
            (
                format!("{base},quantity=5,grace=300"),
                "`grace` must be a percentage",
            ),
            (
                format!("{base},quantity=5,versions=3-2"),
                "3 is greater than 2",
            ),
            (
                format!("{base},quantity=5,versions=x"),
                "`versions` must be",
            ),
            (
                format!("{base},quantity=5,window=7d"),
                "`window`: unknown active window",
            ),
            (
                format!("{base},quantity=5,colour=blue"),
                "unknown key `colour`",
            ),
            (
                format!("{base},quantity=5,quantity=6"),
                "`quantity` is given twice",
            ),
            (format!("{base},quantity=5,modules=a+a"), "lists `a` twice"),
            (
                format!("{base},quantity=5,modules=a++b"),
                "empty module name",
            ),
            (
                format!("{base},quantity=5,metric=scan"),
                "only applies to per-usage",
            ),
            (format!("{base},quantity=5,id=has space"), "`id`"),
            (format!("{base},quantity=5,oops"), "`oops` is not key=value"),
            (
                "product=p,type=per-seat,quantity=1,start=2026-01-01,end=2027-01-01".into(),
                "unknown license type `per-seat`",
            ),
            (
                "product=p,type=per-device,quantity=1,start=2027-01-01,end=2026-01-01".into(),
                "`end` (2026-01-01) must be after `start` (2027-01-01)",
            ),
            (
                "product=p,type=per-device,quantity=1,start=2026-01-01,end=2026-01-01".into(),
                "must be after `start`",
            ),
            (
                "product=p,type=per-device,quantity=1,start=2026-13-01,end=2027-01-01".into(),
                "`start`: `2026-13-01` is not a date",
            ),
            (
                "product=p,type=per-device,start=".into(),
                "missing `quantity`, `start`, `end`",
            ),
            (
                "".into(),
                "missing `product`, `type`, `quantity`, `start`, `end`",
            ),
        ];
        for (spec, needle) in cases {
            let err = one(&spec).unwrap_err();
            assert!(err.starts_with("--item #1"), "{spec}: {err}");
            assert!(err.contains(needle), "{spec}: {err}");
        }
        let err = one(&format!("{base},id=ITEM-7,quantity=0")).unwrap_err();
        assert!(err.starts_with("--item #1 (id `ITEM-7`)"), "{err}");
    }

    #[test]
    fn toml_items_take_natural_types() {
        let text = r#"
            [[item]]
            product = "scanner"
            type = "per-usage"
            quantity = 10000
            start = 2026-01-01
            end = "2027-01-01"
            modules = ["qr", "pdf417"]
            versions = "2-3"
            window = "90d"
            metric = "scan"

            [[item]]
            id = "VIEWER"
            product = "viewer"
            type = "per-device"
            quantity = 3
            grace = 20
            versions = 7
            start = 2026-01-01T00:00:00Z
            end = "2027-01-01"
        "#;
        let raws = parse_toml(text, "items.toml").unwrap();
        let items = build_all(&raws, "L-7").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "L-7-1");
        assert_eq!(items[0].grace_percent, 5, "default of per-usage");
        assert_eq!(items[0].modules, ["qr", "pdf417"]);
        assert_eq!(items[0].active_window, ActiveWindow::Days90);
        assert_eq!(items[0].start, 1_767_225_600);
        assert_eq!(items[1].id, "VIEWER");
        assert_eq!(items[1].grace_percent, 20);
        assert_eq!(items[1].start, 1_767_225_600);
        assert_eq!(items[1].versions.map(|v| v.min_major), Some(7));
    }

    #[test]
    fn bad_toml_names_the_file_item_and_key() {
        let item = "product = \"p\"\ntype = \"per-device\"\nquantity = 1\n\
                    start = 2026-01-01\nend = 2027-01-01\n";
        let cases = [
            (
                format!("[[item]]\n{item}colour = 1\n"),
                "items.toml [[item]] #1: unknown key `colour`",
            ),
            (
                format!("[[item]]\n{item}[[item]]\n{item}modules = \"qr\"\n"),
                "items.toml [[item]] #2: `modules` must be a list",
            ),
            (
                format!("[[item]]\n{item}grace = true\n"),
                "`grace` must be a whole number",
            ),
            (format!("[[item]]\n{item}id = 5\n"), "`id` must be a string"),
            (
                format!("[[item]]\n{item}[other]\n"),
                "unknown top-level key `other`",
            ),
            ("item = 5\n".into(), "`[[item]]` tables"),
            ("[[item]\n".into(), "items.toml: invalid TOML"),
        ];
        for (text, needle) in cases {
            let err = parse_toml(&text, "items.toml").unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let raws = parse_toml(&format!("[[item]]\n{item}quantity = 0\n"), "items.toml");
        assert!(
            raws.unwrap_err().contains("invalid TOML"),
            "TOML refuses repeated keys"
        );
        let raws = parse_toml(
            &format!("[[item]]\n{}", item.replace("quantity = 1", "quantity = 0")),
            "f",
        );
        let err = build_all(&raws.unwrap(), "L").unwrap_err();
        assert!(
            err.contains("f [[item]] #1: `quantity` must be at least 1"),
            "{err}"
        );
        assert!(parse_toml("", "f").unwrap().is_empty());
    }

    #[test]
    fn a_license_needs_items_with_distinct_ids() {
        assert!(
            build_all(&[], "L")
                .unwrap_err()
                .contains("at least one item")
        );
        let spec = "product=p,type=per-device,quantity=1,start=2026-01-01,end=2027-01-01";
        let a = parse_spec(spec, 1).unwrap();
        let b = parse_spec(&format!("{spec},id=L-1"), 2).unwrap();
        let err = build_all(&[a.clone(), b], "L").unwrap_err();
        assert_eq!(err, "--item #2: item id `L-1` is already used by --item #1");
        let items = build_all(&[a.clone(), a], "L").unwrap();
        assert_eq!(items[1].id, "L-2");
    }
}
