//! Authorization outcomes per minute, alert levels and the alert history.

use rusqlite::{Connection, params};
use tally_proto::UnixSeconds;
use tally_store::{AlertLevel, AlertRow, AuthOutcomes, OutcomeTotals, StoreResult};

use crate::backend;

pub fn record_outcomes(c: &mut Connection, counts: &[AuthOutcomes]) -> StoreResult<()> {
    let tx = c.savepoint().map_err(backend("begin outcomes"))?;
    {
        let mut add = tx
            .prepare_cached(
                "INSERT INTO auth_minutes (minute, handshake_code, ok, failed) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (minute, handshake_code) DO UPDATE SET ok = ok + excluded.ok, failed = failed + excluded.failed",
            )
            .map_err(backend("prepare outcomes"))?;
        for o in counts {
            add.execute(params![
                o.minute,
                o.handshake_code,
                i64::try_from(o.ok).unwrap_or(i64::MAX),
                i64::try_from(o.failed).unwrap_or(i64::MAX)
            ])
            .map_err(backend("count authorizations"))?;
        }
    }
    tx.commit().map_err(backend("commit outcomes"))
}

pub fn outcomes(c: &mut Connection, since: UnixSeconds) -> StoreResult<Vec<OutcomeTotals>> {
    let minute = since.div_euclid(60);
    c.execute("DELETE FROM auth_minutes WHERE minute < ?1", [minute])
        .map_err(backend("prune authorizations"))?;
    let mut stmt = c
        .prepare(
            "SELECT handshake_code, SUM(ok), SUM(failed) FROM auth_minutes WHERE minute >= ?1
             GROUP BY handshake_code ORDER BY handshake_code",
        )
        .map_err(backend("read authorizations"))?;
    let rows = stmt
        .query_map([minute], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("read authorizations"))?;
    let mut out = Vec::new();
    for row in rows {
        let (code, ok, failed) = row.map_err(backend("read authorizations"))?;
        out.push(OutcomeTotals {
            handshake_code: code,
            ok: u64::try_from(ok).unwrap_or(0),
            failed: u64::try_from(failed).unwrap_or(0),
        });
    }
    Ok(out)
}

pub fn levels(c: &Connection) -> StoreResult<Vec<AlertLevel>> {
    let mut stmt = c
        .prepare("SELECT key, level FROM alert_levels ORDER BY key")
        .map_err(backend("read alert levels"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend("read alert levels"))?;
    let mut out = Vec::new();
    for row in rows {
        let (key, level) = row.map_err(backend("read alert level"))?;
        out.push(AlertLevel {
            key,
            level: u8::try_from(level).unwrap_or(u8::MAX),
        });
    }
    Ok(out)
}

pub fn set_levels(c: &mut Connection, levels: &[AlertLevel]) -> StoreResult<()> {
    let tx = c.savepoint().map_err(backend("begin"))?;
    for AlertLevel { key, level } in levels {
        tx.execute(
            "INSERT INTO alert_levels (key, level) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET level = excluded.level",
            params![key, level],
        )
        .map_err(backend("write alert level"))?;
    }
    tx.commit().map_err(backend("commit alert levels"))
}

pub fn set_delivery(
    c: &mut Connection,
    id: i64,
    email: Option<&str>,
    webhooks: Option<&str>,
) -> StoreResult<()> {
    c.execute(
        "UPDATE alerts SET email = COALESCE(?2, email), webhooks = COALESCE(?3, webhooks) WHERE id = ?1",
        params![id, email, webhooks],
    )
    .map_err(backend("record delivery"))?;
    Ok(())
}

pub fn list(c: &Connection, limit: u32) -> StoreResult<Vec<AlertRow>> {
    let mut stmt = c
        .prepare(
            "SELECT id, at, subject, body, email, webhooks FROM alerts ORDER BY id DESC LIMIT ?1",
        )
        .map_err(backend("read alerts"))?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(AlertRow {
                id: r.get(0)?,
                at: r.get(1)?,
                subject: r.get(2)?,
                body: r.get(3)?,
                email: r.get(4)?,
                webhooks: r.get(5)?,
            })
        })
        .map_err(backend("read alerts"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read alert"))
}
