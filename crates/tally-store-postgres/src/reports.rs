//! Usage reports, counted exactly once: the reports of many devices recorded with one statement
//! per kind of row (registrations read, reports inserted, hourly counters added, per-usage items
//! charged, places renewed), whatever their number. Each device's batch is judged as if alone:
//! nothing is written for a device without a live place on its code, a report id seen before
//! (or earlier in the same call) is a duplicate.
//!
//! The items the devices hold are locked `FOR SHARE` first (in item order): reports run side by
//! side, while an admission, which locks them `FOR UPDATE`, waits, so a place renewed here is
//! never counted as free there.

use std::collections::{BTreeMap, HashMap, HashSet};

use deadpool_postgres::Transaction;
use tally_core::reporting::{
    charge_key, charged_usage, holds_live_place, overuse, records_overuse, renewed_until,
    usage_exhausted,
};
use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_proto::slice::slice_of;
use tally_store::{ReportBatch, ReportOutcome, ReportResult, StoreResult};

use crate::connection::{count, execute, get, rows, to_i64};
use crate::devices::record_exception;
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

/// One registration of a reporting device on its code.
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

/// Records `batches` in the transaction; one result per batch, in order. The usage counters are
/// added to the rows of `stripe` (see [`add_counters`]).
pub async fn record_all(
    tx: &Transaction<'_>,
    batches: &[&ReportBatch],
    stripe: i16,
) -> StoreResult<Vec<ReportResult>> {
    let held = registrations(tx, batches).await?;
    let live: Vec<bool> = batches
        .iter()
        .map(|b| {
            let rows = held.get(&(b.device_uuid.clone(), b.handshake_code.clone()));
            holds_live_place(
                rows.into_iter().flatten().map(|h| h.active_until),
                b.received_at,
            )
        })
        .collect();
    let mut inserted = insert_reports(tx, batches, &live).await?;

    let mut outcomes: Vec<Option<ReportOutcome>> = Vec::with_capacity(batches.len());
    // Counters in key order: every transaction updates them in the same order.
    let mut per_code: BTreeMap<(i64, &str, &str), u64> = BTreeMap::new();
    let mut per_item: BTreeMap<(i64, &str, &str), u64> = BTreeMap::new();
    let mut charges: BTreeMap<&str, (u64, &LicenseItem)> = BTreeMap::new();
    let mut charged_by: Vec<Option<&str>> = Vec::with_capacity(batches.len());
    let mut renewals: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
    let mut seats: BTreeMap<&str, (&LicenseItem, UnixSeconds)> = BTreeMap::new();
    let empty = Vec::new();
    for (batch, live) in batches.iter().zip(&live) {
        if !live {
            outcomes.push(None);
            charged_by.push(None);
            continue;
        }
        let now = batch.received_at;
        let rows = held
            .get(&(batch.device_uuid.clone(), batch.handshake_code.clone()))
            .unwrap_or(&empty);
        let mut outcome = ReportOutcome::default();
        let mut new_counts = Vec::new();
        let by_rank = |a: &&Held, b: &&Held| a.charge_rank(now).cmp(&b.charge_rank(now));
        let top = rows.iter().max_by(by_rank);
        for report in &batch.reports {
            // A report id listed twice counts once, like one sent twice.
            if !inserted.remove(&report.report_id) {
                outcome.duplicates.push(report.report_id.clone());
                continue;
            }
            let hour = report.slice.div_euclid(SLICES_PER_HOUR);
            for (feature, n) in &report.counts {
                let code = per_code
                    .entry((hour, batch.handshake_code.as_str(), feature.as_str()))
                    .or_default();
                *code = code.saturating_add(*n);
                if let Some(top) = top {
                    let item = per_item
                        .entry((hour, top.item.id.as_str(), feature.as_str()))
                        .or_default();
                    *item = item.saturating_add(*n);
                }
            }
            outcome.accepted.push(report.report_id.clone());
            new_counts.push(&report.counts);
        }
        let charged = rows
            .iter()
            .filter(|h| h.item.license_type == LicenseType::PerUsage)
            .max_by(by_rank)
            .map(|h| &h.item);
        if let Some(item) = charged {
            let total = charged_usage(item, new_counts.iter().copied());
            let entry = charges.entry(item.id.as_str()).or_insert((0, item));
            entry.0 = entry.0.saturating_add(total);
        }
        charged_by.push(charged.map(|i| i.id.as_str()));
        for h in rows {
            let until = renewed_until(&h.item, h.active_until, now);
            let entry = renewals
                .entry((h.item.id.as_str(), batch.device_uuid.as_str()))
                .or_insert((until, now));
            *entry = (entry.0.max(until), entry.1.max(now));
            if records_overuse(&h.item, h.active_until, now) {
                let seen = seats.entry(h.item.id.as_str()).or_insert((&h.item, now));
                seen.1 = seen.1.max(now);
            }
        }
        outcomes.push(Some(outcome));
    }

    // Independent of each other: sent together, answered in one round trip.
    let ((), used_up, ()) = tokio::try_join!(
        biased;
        add_counters(tx, &per_code, &per_item, stripe),
        charge(tx, &charges),
        renew(tx, &renewals)
    )?;
    record_overuse(tx, &seats).await?;

    Ok(outcomes
        .into_iter()
        .zip(charged_by)
        .map(|(outcome, charged)| match outcome {
            None => ReportResult::NoLivePlace,
            Some(mut outcome) => {
                if let Some(item) = charged.filter(|i| used_up.contains(*i)) {
                    outcome.exhausted.push(item.to_owned());
                }
                ReportResult::Recorded(outcome)
            }
        })
        .collect())
}

/// Every registration of the batches' devices on their codes, by (device, code).
async fn registrations(
    tx: &Transaction<'_>,
    batches: &[&ReportBatch],
) -> StoreResult<HashMap<(String, String), Vec<Held>>> {
    let devices: Vec<&str> = batches.iter().map(|b| b.device_uuid.as_str()).collect();
    let codes: Vec<&str> = batches.iter().map(|b| b.handshake_code.as_str()).collect();
    let mut held: HashMap<(String, String), Vec<Held>> = HashMap::new();
    for r in rows(
        tx,
        "read registrations",
        "SELECT d.device_uuid, d.handshake_code, d.active_until, d.admitted_at, i.spec
         FROM devices d JOIN items i ON i.item_id = d.item_id
         WHERE (d.device_uuid, d.handshake_code) IN
               (SELECT * FROM unnest($1::TEXT[], $2::TEXT[]))
         ORDER BY i.item_id FOR SHARE OF i",
        &[&devices, &codes],
    )
    .await?
    {
        let spec: String = get(&r, 4)?;
        held.entry((get(&r, 0)?, get(&r, 1)?))
            .or_default()
            .push(Held {
                active_until: get(&r, 2)?,
                admitted_at: get(&r, 3)?,
                item: parse_item(&spec)?,
            });
    }
    Ok(held)
}

/// Inserts the reports of the batches with a live place; the ids inserted now.
async fn insert_reports(
    tx: &Transaction<'_>,
    batches: &[&ReportBatch],
    live: &[bool],
) -> StoreResult<HashSet<String>> {
    let (mut ids, mut devices, mut codes, mut slices, mut at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for batch in batches
        .iter()
        .zip(live)
        .filter(|(_, l)| **l)
        .map(|(b, _)| b)
    {
        for report in &batch.reports {
            ids.push(report.report_id.as_str());
            devices.push(batch.device_uuid.as_str());
            codes.push(batch.handshake_code.as_str());
            slices.push(report.slice);
            at.push(batch.received_at);
        }
    }
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    rows(
        tx,
        "insert reports",
        "INSERT INTO reports (report_id, device_uuid, handshake_code, slice, received_at)
         SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[])
         ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
        &[&ids, &devices, &codes, &slices, &at],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

/// `(hour, key, feature) → count` as four columns, for `unnest`.
fn columns(
    counters: &BTreeMap<(i64, &str, &str), u64>,
) -> (Vec<i64>, Vec<String>, Vec<String>, Vec<i64>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((hour, key, feature), n) in counters {
        out.0.push(*hour);
        out.1.push((*key).to_owned());
        out.2.push((*feature).to_owned());
        out.3.push(to_i64(*n));
    }
    out
}

/// Adds the counters per code and per item (pipelined: neither depends on the other) to the rows
/// of `stripe`. Every report of an hour adds to the same code and feature: with one row, each
/// batch would wait for the previous one's commit to be flushed before it could add; a stripe per
/// writer lets the batches of different writers add and flush side by side (readers sum them).
async fn add_counters(
    tx: &Transaction<'_>,
    per_code: &BTreeMap<(i64, &str, &str), u64>,
    per_item: &BTreeMap<(i64, &str, &str), u64>,
    stripe: i16,
) -> StoreResult<()> {
    let by_code = add(
        tx,
        "add usage",
        concat!(
            "INSERT INTO usage_hourly (hour, handshake_code, feature, count, stripe)
             SELECT h, c, f, n, $5
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[]) AS u(h, c, f, n)
             ON CONFLICT (hour, handshake_code, feature, stripe) DO UPDATE SET ",
            saturating_add!("usage_hourly", "count")
        ),
        per_code,
        stripe,
    );
    let by_item = add(
        tx,
        "add item usage",
        concat!(
            "INSERT INTO usage_item_hourly (hour, item_id, feature, count, stripe)
             SELECT h, i, f, n, $5
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[]) AS u(h, i, f, n)
             ON CONFLICT (hour, item_id, feature, stripe) DO UPDATE SET ",
            saturating_add!("usage_item_hourly", "count")
        ),
        per_item,
        stripe,
    );
    tokio::try_join!(biased; by_code, by_item)?;
    Ok(())
}

/// Adds `counters` with `sql`, which takes them as the four columns of [`columns`] and the stripe.
async fn add(
    tx: &Transaction<'_>,
    what: &str,
    sql: &str,
    counters: &BTreeMap<(i64, &str, &str), u64>,
    stripe: i16,
) -> StoreResult<()> {
    if counters.is_empty() {
        return Ok(());
    }
    let (hours, keys, features, counts) = columns(counters);
    execute(tx, what, sql, &[&hours, &keys, &features, &counts, &stripe]).await?;
    Ok(())
}

/// Charges per-usage items; the ids of those used up after the charge.
async fn charge(
    tx: &Transaction<'_>,
    charges: &BTreeMap<&str, (u64, &LicenseItem)>,
) -> StoreResult<HashSet<String>> {
    if charges.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = charges.keys().copied().collect();
    let totals: Vec<i64> = charges.values().map(|(n, _)| to_i64(*n)).collect();
    let mut used_up = HashSet::new();
    for r in rows(
        tx,
        "charge usage",
        concat!(
            "INSERT INTO item_usage (item_id, used)
             SELECT * FROM unnest($1::TEXT[], $2::BIGINT[])
             ON CONFLICT (item_id) DO UPDATE SET ",
            saturating_add!("item_usage", "used"),
            " RETURNING item_id, used"
        ),
        &[&ids, &totals],
    )
    .await?
    {
        let id: String = get(&r, 0)?;
        if let Some((_, item)) = charges.get(id.as_str())
            && usage_exhausted(item, count(&r, 1)?)
        {
            used_up.insert(id);
        }
    }
    Ok(used_up)
}

/// A report is a contact: registrations and seats still held are renewed, never shortened (an
/// admission may have moved them on meanwhile).
async fn renew(
    tx: &Transaction<'_>,
    renewals: &BTreeMap<(&str, &str), (i64, i64)>,
) -> StoreResult<()> {
    if renewals.is_empty() {
        return Ok(());
    }
    let items: Vec<&str> = renewals.keys().map(|(i, _)| *i).collect();
    let devices: Vec<&str> = renewals.keys().map(|(_, d)| *d).collect();
    let until: Vec<i64> = renewals.values().map(|(u, _)| *u).collect();
    let seen: Vec<i64> = renewals.values().map(|(_, n)| *n).collect();
    execute(
        tx,
        "renew registrations",
        "UPDATE devices d SET active_until = GREATEST(d.active_until, u.until),
                              last_seen = GREATEST(d.last_seen, u.seen)
         FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[])
              AS u(item_id, device_uuid, until, seen)
         WHERE d.item_id = u.item_id AND d.device_uuid = u.device_uuid",
        &[&items, &devices, &until, &seen],
    )
    .await?;
    Ok(())
}

/// Records the overuse of the concurrent items whose live seats reported
/// ([`tally_core::reporting::records_overuse`]).
async fn record_overuse(
    tx: &Transaction<'_>,
    seats: &BTreeMap<&str, (&LicenseItem, UnixSeconds)>,
) -> StoreResult<()> {
    for (id, (item, now)) in seats {
        let (_, units) = crate::devices::held(tx, id, *now).await?;
        if let Some(excess) = overuse(item, units) {
            record_exception(tx, id, slice_of(*now), excess).await?;
        }
    }
    Ok(())
}
