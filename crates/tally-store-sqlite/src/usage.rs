//! Usage reports, counted exactly once, and their daily statistics.

use rusqlite::{Connection, TransactionBehavior, params};
use tally_store::{DailyUsage, ReportBatch, ReportOutcome, StoreResult, UsageFilter};

use crate::backend;

/// Slices per hour (3-minute slices).
const SLICES_PER_HOUR: i64 = 20;

/// Records a batch in one transaction: a report id seen before is skipped, a new one adds its
/// counts to the hourly counters. Also refreshes the device's last contact.
pub fn record(c: &mut Connection, batch: &ReportBatch) -> StoreResult<ReportOutcome> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin report"))?;
    let mut outcome = ReportOutcome::default();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO reports (report_id, device_uuid, handshake_code, slice, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend("prepare report"))?;
        let mut count = tx
            .prepare_cached(
                "INSERT INTO usage_hourly (hour, handshake_code, feature, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hour, handshake_code, feature) DO UPDATE SET count = count + excluded.count",
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
        }
    }
    tx.execute(
        "UPDATE devices SET last_seen = MAX(last_seen, ?1) WHERE device_uuid = ?2",
        params![batch.received_at, batch.device_uuid],
    )
    .map_err(backend("refresh device"))?;
    tx.commit().map_err(backend("commit report"))?;
    Ok(outcome)
}

pub fn by_day(c: &Connection, f: &UsageFilter) -> StoreResult<Vec<DailyUsage>> {
    let mut stmt = c
        .prepare(
            "SELECT hour / 24 AS day, handshake_code, feature, SUM(count)
             FROM usage_hourly
             WHERE (?1 IS NULL OR hour >= ?1 * 24)
               AND (?2 IS NULL OR hour < (?2 + 1) * 24)
               AND (?3 IS NULL OR handshake_code = ?3)
             GROUP BY day, handshake_code, feature
             ORDER BY day, handshake_code, feature",
        )
        .map_err(backend("query usage"))?;
    let rows = stmt
        .query_map(params![f.from_day, f.to_day, f.handshake_code], |r| {
            Ok(DailyUsage {
                day: r.get(0)?,
                handshake_code: r.get(1)?,
                feature: r.get(2)?,
                count: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })
        .map_err(backend("query usage"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read usage"))
}
