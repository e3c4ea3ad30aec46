//! Usage reports, counted exactly once, and their daily statistics.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, params};
use tally_core::reporting::{
    charge_key, charged_usage, holds_live_place, overuse, records_overuse, renewed_until,
    usage_exhausted,
};
use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;
use tally_store::{
    DailyUsage, HourlyUsage, ItemHourlyUsage, ReportBatch, ReportOutcome, ReportResult,
    StoreResult, UsageFilter,
};

use crate::backend;
use crate::devices::{record_exception, to_i64};
use crate::licenses::parse_item;
use crate::places::{self, Place};
use crate::savepoint::Savepoint;

/// Slices per hour (3-minute slices).
const SLICES_PER_HOUR: i64 = 20;

/// Counters saturate at `i64::MAX` instead of overflowing: SQLite would turn an overflowing sum
/// into a REAL, which every later read of the counter would reject.
macro_rules! saturating_add {
    ($col:literal) => {
        concat!(
            $col,
            " = CASE WHEN ",
            $col,
            " > 9223372036854775807 - excluded.",
            $col,
            " THEN 9223372036854775807 ELSE ",
            $col,
            " + excluded.",
            $col,
            " END"
        )
    };
}

/// Records a batch in one transaction, if the device holds a live place on the code: a report
/// id seen before is skipped, a new one adds its counts to the hourly counters. Also renews the
/// device's places and charges per-usage items (see [`renew_and_charge`]).
pub fn record(c: &mut Connection, batch: &ReportBatch) -> StoreResult<ReportResult> {
    let tx = Savepoint::begin(c)?;
    let held = registrations(&tx, batch)?;
    if !holds_live_place(held.iter().map(|h| h.active_until), batch.received_at) {
        return Ok(ReportResult::NoLivePlace);
    }
    let mut outcome = ReportOutcome::default();
    let mut new_counts: Vec<(i64, &BTreeMap<String, u64>)> = Vec::new();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO reports (report_id, device_uuid, handshake_code, slice, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend("prepare report"))?;
        let mut count = tx
            .prepare_cached(
                concat!(
                    "INSERT INTO usage_hourly (hour, handshake_code, feature, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (hour, handshake_code, feature) DO UPDATE SET ",
                    saturating_add!("count")
                ),
            )
            .map_err(backend("prepare counter"))?;
        for report in &batch.reports {
            let inserted = insert
                .execute(params![
                    report.report_id,
                    batch.device_uuid,
                    batch.handshake_code,
                    report.slice,
                    batch.received_at
                ])
                .map_err(backend("insert report"))?;
            if inserted == 0 {
                outcome.duplicates.push(report.report_id.clone());
                continue;
            }
            let hour = report.slice.div_euclid(SLICES_PER_HOUR);
            for (feature, n) in &report.counts {
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                count
                    .execute(params![hour, batch.handshake_code, feature, n])
                    .map_err(backend("add usage"))?;
            }
            outcome.accepted.push(report.report_id.clone());
            new_counts.push((report.slice, &report.counts));
        }
    }
    outcome.exhausted = renew_and_charge(&tx, batch, &held, &new_counts)?;
    tx.commit()?;
    Ok(ReportResult::Recorded(outcome))
}

thread_local! {
    /// Parsed license items by id, on the writer thread. An item never changes once imported
    /// (an id cannot be imported with another content), so entries never go stale.
    static ITEMS: std::cell::RefCell<std::collections::HashMap<String, Arc<LicenseItem>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The item `id`, parsed once per writer thread.
fn item_by_id(c: &Connection, id: &str) -> StoreResult<Arc<LicenseItem>> {
    if let Some(item) = ITEMS.with(|m| m.borrow().get(id).cloned()) {
        return Ok(item);
    }
    let spec: String = c
        .prepare_cached("SELECT spec FROM items WHERE item_id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |r| r.get(0)))
        .map_err(backend("read item"))?;
    let item = Arc::new(parse_item(&spec)?);
    ITEMS.with(|m| m.borrow_mut().insert(id.to_owned(), item.clone()));
    Ok(item)
}

/// One registration of the reporting device on the code.
struct Held {
    item: Arc<LicenseItem>,
    active_until: UnixSeconds,
    admitted_at: UnixSeconds,
    units: u64,
}

impl Held {
    /// See [`tally_core::reporting::charge_key`].
    fn charge_rank(&self, now: UnixSeconds) -> (bool, UnixSeconds, &str) {
        charge_key(self.active_until, self.admitted_at, &self.item.id, now)
    }
}

/// The device's registrations on the code.
fn registrations(tx: &Savepoint<'_>, batch: &ReportBatch) -> StoreResult<Vec<Held>> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT item_id, active_until, admitted_at, units FROM devices
             WHERE device_uuid = ?1 AND handshake_code = ?2",
        )
        .map_err(backend("read registrations"))?;
    let raw = stmt
        .query_map(params![batch.device_uuid, batch.handshake_code], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend("read registrations"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend("read registration"))?;
    raw.into_iter()
        .map(|(item_id, active_until, admitted_at, units)| {
            item_by_id(tx, &item_id).map(|item| Held {
                item,
                active_until,
                admitted_at,
                units: u64::try_from(units).unwrap_or(0),
            })
        })
        .collect()
}

/// A report is a contact: registrations and seats the device still holds on the code are
/// renewed, concurrent overuse is recorded for the slice, and new usage is charged to the
/// per-usage item the device holds on the code (see [`Held::charge_rank`]). Returns the
/// per-usage items of the device that are used up.
fn renew_and_charge(
    tx: &Savepoint<'_>,
    batch: &ReportBatch,
    rows: &[Held],
    new_counts: &[(i64, &BTreeMap<String, u64>)],
) -> StoreResult<Vec<String>> {
    let now = batch.received_at;
    let by_rank = |a: &&Held, b: &&Held| a.charge_rank(now).cmp(&b.charge_rank(now));
    // Statistics per item: the item the device holds on this code.
    if let Some(Held { item, .. }) = rows.iter().max_by(by_rank) {
        let mut add = tx
            .prepare_cached(
                concat!(
                    "INSERT INTO usage_item_hourly (hour, item_id, feature, count) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (hour, item_id, feature) DO UPDATE SET ",
                    saturating_add!("count")
                ),
            )
            .map_err(backend("prepare item usage"))?;
        for (slice, counts) in new_counts {
            for (feature, n) in counts.iter() {
                add.execute(params![
                    slice.div_euclid(SLICES_PER_HOUR),
                    item.id,
                    feature,
                    to_i64(*n)
                ])
                .map_err(backend("add item usage"))?;
            }
        }
    }
    let charged = rows
        .iter()
        .filter(|h| h.item.license_type == LicenseType::PerUsage)
        .max_by(by_rank)
        .map(|h| &h.item);
    let mut exhausted = Vec::new();
    if let Some(item) = charged {
        let total = charged_usage(item, new_counts.iter().map(|(_, counts)| *counts));
        let used: i64 = tx
            .prepare_cached(concat!(
                "INSERT INTO item_usage (item_id, used) VALUES (?1, ?2)
                 ON CONFLICT (item_id) DO UPDATE SET ",
                saturating_add!("used"),
                " RETURNING used"
            ))
            .and_then(|mut stmt| stmt.query_row(params![item.id, to_i64(total)], |r| r.get(0)))
            .map_err(backend("charge usage"))?;
        if usage_exhausted(item, u64::try_from(used).unwrap_or(0)) {
            exhausted.push(item.id.clone());
        }
    }
    for Held {
        item,
        active_until: until,
        units,
        ..
    } in rows
    {
        let renewed = renewed_until(item, *until, now);
        tx.prepare_cached(
            "UPDATE devices SET active_until = ?3, last_seen = MAX(last_seen, ?4)
             WHERE item_id = ?1 AND device_uuid = ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![item.id, batch.device_uuid, renewed, now]))
        .map_err(backend("renew registration"))?;
        places::changed(
            tx,
            &item.id,
            Some(Place {
                active_until: *until,
                units: *units,
            }),
            Some(Place {
                active_until: renewed,
                units: *units,
            }),
        )?;
        if records_overuse(item, *until, now)
            && let Some(excess) = overuse(item, places::held(tx, &item.id, now)?.units)
        {
            record_exception(tx, &item.id, slice_of(now), excess)?;
        }
    }
    Ok(exhausted)
}

/// Sums the hourly counters into UTC days in Rust: `div_euclid` (SQLite's `/` truncates toward
/// zero) and saturating sums (SQLite's `SUM` fails on overflow).
pub fn by_day(c: &Connection, f: &UsageFilter) -> StoreResult<Vec<DailyUsage>> {
    Ok(tally_store::daily_from_hourly(by_hour(c, f)?))
}

pub fn by_hour(c: &Connection, f: &UsageFilter) -> StoreResult<Vec<HourlyUsage>> {
    let mut stmt = c
        .prepare(
            "SELECT hour, handshake_code, feature, count FROM usage_hourly
             WHERE (?1 IS NULL OR hour >= ?1 * 24)
               AND (?2 IS NULL OR hour < (?2 + 1) * 24)
               AND (?3 IS NULL OR handshake_code = ?3)
             ORDER BY hour, handshake_code, feature",
        )
        .map_err(backend("query usage"))?;
    let rows = stmt
        .query_map(params![f.from_day, f.to_day, f.handshake_code], |r| {
            Ok(HourlyUsage {
                hour: r.get(0)?,
                handshake_code: r.get(1)?,
                feature: r.get(2)?,
                count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })
        .map_err(backend("query usage"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read usage"))
}

pub fn by_item_hour(
    c: &Connection,
    f: &UsageFilter,
    item: Option<&str>,
) -> StoreResult<Vec<ItemHourlyUsage>> {
    let mut stmt = c
        .prepare(
            "SELECT hour, item_id, feature, count FROM usage_item_hourly
             WHERE (?1 IS NULL OR hour >= ?1 * 24)
               AND (?2 IS NULL OR hour < (?2 + 1) * 24)
               AND (?3 IS NULL OR item_id = ?3)
             ORDER BY hour, item_id, feature",
        )
        .map_err(backend("query item usage"))?;
    let rows = stmt
        .query_map(params![f.from_day, f.to_day, item], |r| {
            Ok(ItemHourlyUsage {
                hour: r.get(0)?,
                item_id: r.get(1)?,
                feature: r.get(2)?,
                count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })
        .map_err(backend("query item usage"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read item usage"))
}
