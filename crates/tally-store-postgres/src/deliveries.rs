//! Alerts with their deliveries, claimed when due, and the attempts made at them.

use deadpool_postgres::Transaction;
use tally_proto::UnixSeconds;
use tally_store::{
    AfterAttempt, DeliveryAttempt, DeliveryChannel, DeliveryRow, DeliveryState, DueDelivery,
    NewAlert, StoreError, StoreResult,
};

use crate::connection::{Db, execute, get, row, rows};

pub async fn record_alert(tx: &Transaction<'_>, alert: &NewAlert) -> StoreResult<i64> {
    let id: i64 = match row(
        tx,
        "record alert",
        "INSERT INTO alerts (at, subject, body, email, webhooks)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            &alert.at,
            &alert.subject,
            &alert.body,
            &alert.email,
            &alert.webhooks,
        ],
    )
    .await?
    {
        Some(r) => get(&r, 0)?,
        None => return Err(StoreError::failure("the new alert returned no id")),
    };
    for d in &alert.deliveries {
        execute(
            tx,
            "record alert delivery",
            "INSERT INTO alert_deliveries (alert_id, channel, target, payload, state, attempts, next_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5)",
            &[&id, &d.channel.as_str(), &d.target, &d.payload, &alert.at],
        )
        .await?;
    }
    Ok(id)
}

fn channel(text: &str) -> StoreResult<DeliveryChannel> {
    DeliveryChannel::parse(text)
        .ok_or_else(|| StoreError::failure(format!("damaged row: delivery channel `{text}`")))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `SKIP LOCKED`: instances claiming at once take different deliveries instead of waiting.
pub async fn claim_due(
    c: &impl Db,
    now: UnixSeconds,
    hold_until: UnixSeconds,
    limit: u32,
) -> StoreResult<Vec<DueDelivery>> {
    let mut due = rows(
        c,
        "claim due deliveries",
        "WITH due AS (
             SELECT id FROM alert_deliveries WHERE state = 'pending' AND next_at <= $1
             ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
         )
         UPDATE alert_deliveries d SET next_at = $2
         FROM due, alerts a WHERE d.id = due.id AND a.id = d.alert_id
         RETURNING d.id, d.alert_id, a.at, d.channel, d.target, d.payload, d.attempts",
        &[&now, &hold_until, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DueDelivery {
            id: get(r, 0)?,
            alert_id: get(r, 1)?,
            raised_at: get(r, 2)?,
            channel: channel(&get::<String>(r, 3)?)?,
            target: get(r, 4)?,
            payload: get(r, 5)?,
            attempts: attempts(get(r, 6)?),
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    due.sort_by_key(|d| d.id);
    Ok(due)
}

pub async fn record_attempt(
    tx: &Transaction<'_>,
    id: i64,
    attempt: &DeliveryAttempt,
    after: AfterAttempt,
) -> StoreResult<()> {
    let Some(made) = row(
        tx,
        "read delivery",
        "SELECT attempts FROM alert_deliveries WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    else {
        return Err(StoreError::NotFound(format!("alert delivery {id}")));
    };
    let number = get::<i64>(&made, 0)?.saturating_add(1);
    let (state, next_at) = match after {
        AfterAttempt::Sent => (DeliveryState::Sent, None),
        AfterAttempt::RetryAt(at) => (DeliveryState::Pending, Some(at)),
        AfterAttempt::GiveUp => (DeliveryState::Failed, None),
    };
    execute(
        tx,
        "record delivery attempt",
        "INSERT INTO alert_attempts (delivery_id, number, at, outcome) VALUES ($1, $2, $3, $4)",
        &[&id, &number, &attempt.at, &attempt.outcome],
    )
    .await?;
    execute(
        tx,
        "record delivery state",
        "UPDATE alert_deliveries SET attempts = $2, state = $3, next_at = $4 WHERE id = $1",
        &[&id, &number, &state.as_str(), &next_at],
    )
    .await?;
    Ok(())
}

pub async fn of_alerts(c: &impl Db, alert_ids: &[i64]) -> StoreResult<Vec<DeliveryRow>> {
    let deliveries = rows(
        c,
        "read deliveries",
        "SELECT id, alert_id, channel, target, state, next_at FROM alert_deliveries
         WHERE alert_id = ANY($1) ORDER BY alert_id, id",
        &[&alert_ids],
    )
    .await?;
    let ids: Vec<i64> = deliveries
        .iter()
        .map(|r| get(r, 0))
        .collect::<StoreResult<_>>()?;
    let tried = rows(
        c,
        "read delivery attempts",
        "SELECT delivery_id, at, outcome FROM alert_attempts
         WHERE delivery_id = ANY($1) ORDER BY delivery_id, number",
        &[&ids],
    )
    .await?;
    let mut out = Vec::with_capacity(deliveries.len());
    for r in &deliveries {
        let id: i64 = get(r, 0)?;
        let state_text: String = get(r, 4)?;
        let state = DeliveryState::parse(&state_text).ok_or_else(|| {
            StoreError::failure(format!("damaged row: delivery state `{state_text}`"))
        })?;
        let mut attempts = Vec::new();
        for a in &tried {
            if get::<i64>(a, 0)? == id {
                attempts.push(DeliveryAttempt {
                    at: get(a, 1)?,
                    outcome: get(a, 2)?,
                });
            }
        }
        let next_at: Option<i64> = get(r, 5)?;
        out.push(DeliveryRow {
            id,
            alert_id: get(r, 1)?,
            channel: channel(&get::<String>(r, 2)?)?,
            target: get(r, 3)?,
            state,
            next_at: next_at.filter(|_| state == DeliveryState::Pending),
            attempts,
        });
    }
    Ok(out)
}
