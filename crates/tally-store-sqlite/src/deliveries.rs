//! Alerts with their deliveries, claimed when due, and the attempts made at them.

use rusqlite::{Connection, OptionalExtension, Row, params};
use tally_proto::UnixSeconds;
use tally_store::{
    AfterAttempt, DeliveryAttempt, DeliveryChannel, DeliveryRow, DeliveryState, DueDelivery,
    NewAlert, StoreError, StoreResult,
};

use crate::backend;

pub fn record_alert(c: &mut Connection, alert: &NewAlert) -> StoreResult<i64> {
    let tx = c.savepoint().map_err(backend("begin alert"))?;
    tx.execute(
        "INSERT INTO alerts (at, subject, body, email, webhooks) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            alert.at,
            alert.subject,
            alert.body,
            alert.email,
            alert.webhooks
        ],
    )
    .map_err(backend("record alert"))?;
    let id = tx.last_insert_rowid();
    for d in &alert.deliveries {
        tx.execute(
            "INSERT INTO alert_deliveries (alert_id, channel, target, payload, state, attempts, next_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5)",
            params![id, d.channel.as_str(), d.target, d.payload, alert.at],
        )
        .map_err(backend("record alert delivery"))?;
    }
    tx.commit().map_err(backend("commit alert"))?;
    Ok(id)
}

fn channel(text: &str) -> StoreResult<DeliveryChannel> {
    DeliveryChannel::parse(text)
        .ok_or_else(|| StoreError::failure(format!("damaged row: delivery channel `{text}`")))
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn claim_due(
    c: &mut Connection,
    now: UnixSeconds,
    hold_until: UnixSeconds,
    limit: u32,
) -> StoreResult<Vec<DueDelivery>> {
    let tx = c.savepoint().map_err(backend("begin claim"))?;
    let due = {
        let mut stmt = tx
            .prepare(
                "SELECT d.id, d.alert_id, a.at, d.channel, d.target, d.payload, d.attempts
                 FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.state = 'pending' AND d.next_at <= ?1
                 ORDER BY d.next_at, d.id LIMIT ?2",
            )
            .map_err(backend("read due deliveries"))?;
        let rows = stmt
            .query_map(params![now, limit], |r: &Row<'_>| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(backend("read due deliveries"))?;
        let mut due = Vec::new();
        for row in rows {
            let (id, alert_id, raised_at, ch, target, payload, attempts) =
                row.map_err(backend("read due delivery"))?;
            due.push(DueDelivery {
                id,
                alert_id,
                raised_at,
                channel: channel(&ch)?,
                target,
                payload,
                attempts: count(attempts),
            });
        }
        due
    };
    for d in &due {
        tx.execute(
            "UPDATE alert_deliveries SET next_at = ?2 WHERE id = ?1",
            params![d.id, hold_until],
        )
        .map_err(backend("claim delivery"))?;
    }
    tx.commit().map_err(backend("commit claim"))?;
    Ok(due)
}

pub fn record_attempt(
    c: &mut Connection,
    id: i64,
    attempt: &DeliveryAttempt,
    after: AfterAttempt,
) -> StoreResult<()> {
    let tx = c.savepoint().map_err(backend("begin attempt"))?;
    let made: Option<i64> = tx
        .query_row(
            "SELECT attempts FROM alert_deliveries WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("read delivery"))?;
    let Some(made) = made else {
        return Err(StoreError::NotFound(format!("alert delivery {id}")));
    };
    let number = made.saturating_add(1);
    let (state, next_at) = match after {
        AfterAttempt::Sent => (DeliveryState::Sent, None),
        AfterAttempt::RetryAt(at) => (DeliveryState::Pending, Some(at)),
        AfterAttempt::GiveUp => (DeliveryState::Failed, None),
    };
    tx.execute(
        "INSERT INTO alert_attempts (delivery_id, number, at, outcome) VALUES (?1, ?2, ?3, ?4)",
        params![id, number, attempt.at, attempt.outcome],
    )
    .map_err(backend("record delivery attempt"))?;
    tx.execute(
        "UPDATE alert_deliveries SET attempts = ?2, state = ?3, next_at = ?4 WHERE id = ?1",
        params![id, number, state.as_str(), next_at],
    )
    .map_err(backend("record delivery state"))?;
    tx.commit().map_err(backend("commit attempt"))
}

pub fn of_alerts(c: &Connection, alert_ids: &[i64]) -> StoreResult<Vec<DeliveryRow>> {
    let mut deliveries = c
        .prepare_cached(
            "SELECT id, alert_id, channel, target, state, next_at FROM alert_deliveries
             WHERE alert_id = ?1 ORDER BY id",
        )
        .map_err(backend("read deliveries"))?;
    let mut attempts = c
        .prepare_cached(
            "SELECT at, outcome FROM alert_attempts WHERE delivery_id = ?1 ORDER BY number",
        )
        .map_err(backend("read delivery attempts"))?;
    let mut ids = alert_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for alert_id in ids {
        let rows = deliveries
            .query_map([alert_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(backend("read deliveries"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend("read delivery"))?;
        for (id, alert_id, ch, target, state, next_at) in rows {
            let state = DeliveryState::parse(&state).ok_or_else(|| {
                StoreError::failure(format!("damaged row: delivery state `{state}`"))
            })?;
            let tried = attempts
                .query_map([id], |r| {
                    Ok(DeliveryAttempt {
                        at: r.get(0)?,
                        outcome: r.get(1)?,
                    })
                })
                .map_err(backend("read delivery attempts"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend("read delivery attempt"))?;
            out.push(DeliveryRow {
                id,
                alert_id,
                channel: channel(&ch)?,
                target,
                state,
                next_at: (state == DeliveryState::Pending)
                    .then_some(next_at)
                    .flatten(),
                attempts: tried,
            });
        }
    }
    Ok(out)
}
