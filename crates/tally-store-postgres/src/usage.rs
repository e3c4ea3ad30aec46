//! Usage reports, counted exactly once, and their statistics.

use std::collections::{BTreeMap, HashSet};

use deadpool_postgres::Transaction;
use tally_core::reporting::{
    charge_key, charged_usage, holds_live_place, overuse, records_overuse, renewed_until,
    usage_exhausted,
};
use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;
use tally_store::{
    DailyUsage, HourlyUsage, ItemHourlyUsage, ReportBatch, ReportOutcome, ReportResult, StoreError,
    StoreResult, UsageFilter,
};

use crate::connection::{Db, count, execute, get, row, rows, to_i64};
use crate::devices::{held, record_exception};
use crate::licenses::parse_item;

/// Slices per hour (3-minute slices).
const SLICES_PER_HOUR: i64 = 20;

/// Adds to a counter column, saturating at `i64::MAX` instead of failing on overflow.
macro_rules! saturating_add {
    ($table:literal, $col:literal) => {
        concat!(
            $col,
            " = CASE WHEN ",
            $table,
            ".",
            $col,
            " > 9223372036854775807 - excluded.",
            $col,
            " THEN 9223372036854775807 ELSE ",
            $table,
            ".",
            $col,
            " + excluded.",
            $col,
            " END"
        )
    };
}

/// One registration of the reporting device on the code.
struct Held {
    item: LicenseItem,
    active_until: UnixSeconds,
    admitted_at: UnixSeconds,
}

impl Held {
    /// See [`tally_core::reporting::charge_key`].
    fn charge_rank(&self, now: UnixSeconds) -> (bool, UnixSeconds, &str) {
        charge_key(self.active_until, self.admitted_at, &self.item.id, now)
    }
}

/// Records a batch in one transaction, if the device holds a live place on the code: a report
/// id seen before is skipped, a new one adds its counts to the hourly counters. Also renews the
/// device's places and charges per-usage items.
///
/// The items the device holds are locked `FOR SHARE` first (in item order): reports of many
/// devices run side by side, while an admission, which locks them `FOR UPDATE`, waits, so a
/// place renewed here is never counted as free there.
pub async fn record(tx: &Transaction<'_>, batch: &ReportBatch) -> StoreResult<ReportResult> {
    let now = batch.received_at;
    let mut held_rows = Vec::new();
    for r in rows(
        tx,
        "read registrations",
        "SELECT d.active_until, d.admitted_at, i.spec
         FROM devices d JOIN items i ON i.item_id = d.item_id
         WHERE d.device_uuid = $1 AND d.handshake_code = $2
         ORDER BY i.item_id FOR SHARE OF i",
        &[&batch.device_uuid, &batch.handshake_code],
    )
    .await?
    {
        let spec: String = get(&r, 2)?;
        held_rows.push(Held {
            active_until: get(&r, 0)?,
            admitted_at: get(&r, 1)?,
            item: parse_item(&spec)?,
        });
    }
    if !holds_live_place(held_rows.iter().map(|h| h.active_until), now) {
        return Ok(ReportResult::NoLivePlace);
    }

    let ids: Vec<&str> = batch.reports.iter().map(|r| r.report_id.as_str()).collect();
    let slices: Vec<i64> = batch.reports.iter().map(|r| r.slice).collect();
    let mut inserted: HashSet<String> = rows(
        tx,
        "insert reports",
        "INSERT INTO reports (report_id, device_uuid, handshake_code, slice, received_at)
         SELECT id, $2, $3, s, $4 FROM unnest($1::TEXT[], $5::BIGINT[]) AS r(id, s)
         ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
        &[
            &ids,
            &batch.device_uuid,
            &batch.handshake_code,
            &now,
            &slices,
        ],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect::<StoreResult<_>>()?;

    let mut outcome = ReportOutcome::default();
    let mut new_counts: Vec<&BTreeMap<String, u64>> = Vec::new();
    // Per (hour, feature), in key order: every transaction updates counters in the same order.
    let mut hourly: BTreeMap<(i64, &str), u64> = BTreeMap::new();
    for report in &batch.reports {
        // A report id listed twice in one batch counts once, like one sent twice.
        if !inserted.remove(&report.report_id) {
            outcome.duplicates.push(report.report_id.clone());
            continue;
        }
        let hour = report.slice.div_euclid(SLICES_PER_HOUR);
        for (feature, n) in &report.counts {
            let total = hourly.entry((hour, feature.as_str())).or_default();
            *total = total.saturating_add(*n);
        }
        outcome.accepted.push(report.report_id.clone());
        new_counts.push(&report.counts);
    }
    let (hours, features, counts) = columns(&hourly);
    // The writes below do not depend on each other: they are sent together (pipelined on the
    // transaction's connection) and PostgreSQL runs them in order.
    let add_per_code = async {
        if !hours.is_empty() {
            execute(
                tx,
                "add usage",
                concat!(
                    "INSERT INTO usage_hourly (hour, handshake_code, feature, count)
                     SELECT h, $1, f, n FROM unnest($2::BIGINT[], $3::TEXT[], $4::BIGINT[]) AS u(h, f, n)
                     ON CONFLICT (hour, handshake_code, feature) DO UPDATE SET ",
                    saturating_add!("usage_hourly", "count")
                ),
                &[&batch.handshake_code, &hours, &features, &counts],
            )
            .await?;
        }
        Ok::<_, StoreError>(())
    };
    let by_rank = |a: &&Held, b: &&Held| a.charge_rank(now).cmp(&b.charge_rank(now));
    // Statistics per item: the item the device holds on this code.
    let top = held_rows.iter().max_by(by_rank);
    let add_per_item = async {
        if let Some(top) = top
            && !hours.is_empty()
        {
            execute(
                tx,
                "add item usage",
                concat!(
                    "INSERT INTO usage_item_hourly (hour, item_id, feature, count)
                     SELECT h, $1, f, n FROM unnest($2::BIGINT[], $3::TEXT[], $4::BIGINT[]) AS u(h, f, n)
                     ON CONFLICT (hour, item_id, feature) DO UPDATE SET ",
                    saturating_add!("usage_item_hourly", "count")
                ),
                &[&top.item.id, &hours, &features, &counts],
            )
            .await?;
        }
        Ok(())
    };
    let charged = held_rows
        .iter()
        .filter(|h| h.item.license_type == LicenseType::PerUsage)
        .max_by(by_rank)
        .map(|h| &h.item);
    let charge = async {
        let Some(item) = charged else {
            return Ok(None);
        };
        let total = charged_usage(item, new_counts.iter().copied());
        let used = row(
            tx,
            "charge usage",
            concat!(
                "INSERT INTO item_usage (item_id, used) VALUES ($1, $2)
                 ON CONFLICT (item_id) DO UPDATE SET ",
                saturating_add!("item_usage", "used"),
                " RETURNING used"
            ),
            &[&item.id, &to_i64(total)],
        )
        .await?;
        let used = match used {
            Some(r) => count(&r, 0)?,
            None => 0,
        };
        Ok(usage_exhausted(item, used).then(|| item.id.clone()))
    };
    let ((), (), exhausted, ()) = tokio::try_join!(
        biased;
        add_per_code,
        add_per_item,
        charge,
        renew(tx, batch, &held_rows)
    )?;
    outcome.exhausted.extend(exhausted);
    Ok(ReportResult::Recorded(outcome))
}

/// The counters of `hourly` as three parallel columns, for `unnest`.
fn columns(hourly: &BTreeMap<(i64, &str), u64>) -> (Vec<i64>, Vec<String>, Vec<i64>) {
    let mut hours = Vec::with_capacity(hourly.len());
    let mut features = Vec::with_capacity(hourly.len());
    let mut counts = Vec::with_capacity(hourly.len());
    for ((hour, feature), n) in hourly {
        hours.push(*hour);
        features.push((*feature).to_owned());
        counts.push(to_i64(*n));
    }
    (hours, features, counts)
}

/// A report is a contact: registrations and seats the device still holds on the code are
/// renewed (never shortened: an admission may have moved them on meanwhile) and concurrent
/// overuse is recorded for the slice.
async fn renew(tx: &Transaction<'_>, batch: &ReportBatch, held_rows: &[Held]) -> StoreResult<()> {
    let now = batch.received_at;
    let items: Vec<&str> = held_rows.iter().map(|h| h.item.id.as_str()).collect();
    let until: Vec<i64> = held_rows
        .iter()
        .map(|h| renewed_until(&h.item, h.active_until, now))
        .collect();
    execute(
        tx,
        "renew registrations",
        "UPDATE devices d SET active_until = GREATEST(d.active_until, u.until),
                              last_seen = GREATEST(d.last_seen, $3)
         FROM unnest($1::TEXT[], $4::BIGINT[]) AS u(item_id, until)
         WHERE d.item_id = u.item_id AND d.device_uuid = $2",
        &[&items, &batch.device_uuid, &now, &until],
    )
    .await?;
    for h in held_rows {
        if records_overuse(&h.item, h.active_until, now)
            && let Some(excess) = overuse(&h.item, held(tx, &h.item.id, now).await?.1)
        {
            record_exception(tx, &h.item.id, slice_of(now), excess).await?;
        }
    }
    Ok(())
}

/// Sums the hourly counters into UTC days (floored, saturating).
pub async fn by_day(c: &impl Db, f: &UsageFilter) -> StoreResult<Vec<DailyUsage>> {
    let mut days: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
    for h in by_hour(c, f).await? {
        let total = days
            .entry((h.hour.div_euclid(24), h.handshake_code, h.feature))
            .or_default();
        *total = total.saturating_add(h.count);
    }
    Ok(days
        .into_iter()
        .map(|((day, handshake_code, feature), count)| DailyUsage {
            day,
            handshake_code,
            feature,
            count,
        })
        .collect())
}

/// The first hour of `from_day` and the first hour after `to_day`, saturating.
fn hour_range(f: &UsageFilter) -> (Option<i64>, Option<i64>) {
    (
        f.from_day.map(|d| d.saturating_mul(24)),
        f.to_day.map(|d| d.saturating_add(1).saturating_mul(24)),
    )
}

pub async fn by_hour(c: &impl Db, f: &UsageFilter) -> StoreResult<Vec<HourlyUsage>> {
    let (from, to) = hour_range(f);
    rows(
        c,
        "query usage",
        "SELECT hour, handshake_code, feature, count FROM usage_hourly
         WHERE ($1::BIGINT IS NULL OR hour >= $1)
           AND ($2::BIGINT IS NULL OR hour < $2)
           AND ($3::TEXT IS NULL OR handshake_code = $3)
         ORDER BY hour, handshake_code, feature",
        &[&from, &to, &f.handshake_code],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(HourlyUsage {
            hour: get(r, 0)?,
            handshake_code: get(r, 1)?,
            feature: get(r, 2)?,
            count: count(r, 3)?,
        })
    })
    .collect()
}

pub async fn by_item_hour(
    c: &impl Db,
    f: &UsageFilter,
    item: Option<&str>,
) -> StoreResult<Vec<ItemHourlyUsage>> {
    let (from, to) = hour_range(f);
    rows(
        c,
        "query item usage",
        "SELECT hour, item_id, feature, count FROM usage_item_hourly
         WHERE ($1::BIGINT IS NULL OR hour >= $1)
           AND ($2::BIGINT IS NULL OR hour < $2)
           AND ($3::TEXT IS NULL OR item_id = $3)
         ORDER BY hour, item_id, feature",
        &[&from, &to, &item],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(ItemHourlyUsage {
            hour: get(r, 0)?,
            item_id: get(r, 1)?,
            feature: get(r, 2)?,
            count: count(r, 3)?,
        })
    })
    .collect()
}
