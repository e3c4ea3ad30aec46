//! Usage statistics (the reports themselves are recorded by `reports.rs`). The counters are
//! striped by writer (see `reports::add_counters`): every query sums the stripes.

use tally_store::{DailyUsage, HourlyUsage, ItemHourlyUsage, StoreResult, UsageFilter};

use crate::connection::{Db, count, get, rows};

/// Sums the hourly counters into UTC days (floored, saturating).
pub async fn by_day(c: &impl Db, f: &UsageFilter) -> StoreResult<Vec<DailyUsage>> {
    Ok(tally_store::daily_from_hourly(by_hour(c, f).await?))
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
        "SELECT hour, handshake_code, feature, LEAST(SUM(count), 9223372036854775807)::BIGINT
         FROM usage_hourly
         WHERE ($1::BIGINT IS NULL OR hour >= $1)
           AND ($2::BIGINT IS NULL OR hour < $2)
           AND ($3::TEXT IS NULL OR handshake_code = $3)
         GROUP BY hour, handshake_code, feature
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
        "SELECT hour, item_id, feature, LEAST(SUM(count), 9223372036854775807)::BIGINT
         FROM usage_item_hourly
         WHERE ($1::BIGINT IS NULL OR hour >= $1)
           AND ($2::BIGINT IS NULL OR hour < $2)
           AND ($3::TEXT IS NULL OR item_id = $3)
         GROUP BY hour, item_id, feature
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
