//! Authorization outcomes per minute, alert levels and the alert history.

use deadpool_postgres::Transaction;
use tally_proto::UnixSeconds;
use tally_store::{AlertLevel, AlertRow, AuthOutcomes, OutcomeTotals, StoreResult};

use crate::connection::{Db, count, execute, get, rows, to_i64};

pub async fn record_outcomes(tx: &Transaction<'_>, counts: &[AuthOutcomes]) -> StoreResult<()> {
    // Sorted by key, so that instances adding at once never wait on each other in a circle.
    let mut sorted: Vec<&AuthOutcomes> = counts.iter().collect();
    sorted.sort_by(|a, b| (a.minute, &a.handshake_code).cmp(&(b.minute, &b.handshake_code)));
    for o in sorted {
        execute(
            tx,
            "count authorizations",
            "INSERT INTO auth_minutes (minute, handshake_code, ok, failed) VALUES ($1, $2, $3, $4)
             ON CONFLICT (minute, handshake_code) DO UPDATE
             SET ok = auth_minutes.ok + excluded.ok, failed = auth_minutes.failed + excluded.failed",
            &[
                &o.minute,
                &o.handshake_code,
                &to_i64(o.ok),
                &to_i64(o.failed),
            ],
        )
        .await?;
    }
    Ok(())
}

pub async fn outcomes(tx: &Transaction<'_>, since: UnixSeconds) -> StoreResult<Vec<OutcomeTotals>> {
    let minute = since.div_euclid(60);
    execute(
        tx,
        "prune authorizations",
        "DELETE FROM auth_minutes WHERE minute < $1",
        &[&minute],
    )
    .await?;
    rows(
        tx,
        "read authorizations",
        "SELECT handshake_code, SUM(ok)::BIGINT, SUM(failed)::BIGINT FROM auth_minutes
         WHERE minute >= $1 GROUP BY handshake_code ORDER BY handshake_code",
        &[&minute],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(OutcomeTotals {
            handshake_code: get(r, 0)?,
            ok: count(r, 1)?,
            failed: count(r, 2)?,
        })
    })
    .collect()
}

pub async fn levels(c: &impl Db) -> StoreResult<Vec<AlertLevel>> {
    rows(
        c,
        "read alert levels",
        "SELECT key, level FROM alert_levels ORDER BY key",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        let level: i64 = get(r, 1)?;
        Ok(AlertLevel {
            key: get(r, 0)?,
            level: u8::try_from(level).unwrap_or(u8::MAX),
        })
    })
    .collect()
}

pub async fn set_levels(tx: &Transaction<'_>, levels: &[AlertLevel]) -> StoreResult<()> {
    for AlertLevel { key, level } in levels {
        execute(
            tx,
            "write alert level",
            "INSERT INTO alert_levels (key, level) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET level = excluded.level",
            &[key, &i64::from(*level)],
        )
        .await?;
    }
    Ok(())
}

pub async fn set_delivery(
    c: &impl Db,
    id: i64,
    email: Option<&str>,
    webhooks: Option<&str>,
) -> StoreResult<()> {
    execute(
        c,
        "record delivery",
        "UPDATE alerts SET email = COALESCE($2, email), webhooks = COALESCE($3, webhooks)
         WHERE id = $1",
        &[&id, &email, &webhooks],
    )
    .await
    .map(drop)
}

pub async fn list(c: &impl Db, limit: u32) -> StoreResult<Vec<AlertRow>> {
    rows(
        c,
        "read alerts",
        "SELECT id, at, subject, body, email, webhooks FROM alerts ORDER BY id DESC LIMIT $1",
        &[&i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AlertRow {
            id: get(r, 0)?,
            at: get(r, 1)?,
            subject: get(r, 2)?,
            body: get(r, 3)?,
            email: get(r, 4)?,
            webhooks: get(r, 5)?,
        })
    })
    .collect()
}
