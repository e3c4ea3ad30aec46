//! Leases, used envelopes and report-session windows: what the instances sharing this database
//! keep in it, so that a background job runs once and a request replayed to another instance is
//! refused there too.

use deadpool_postgres::Transaction;
use tally_proto::UnixSeconds;
use tally_store::StoreResult;

use crate::connection::{Db, execute, get, row};

pub async fn setting_or_insert(
    tx: &Transaction<'_>,
    key: &str,
    value: &str,
) -> StoreResult<String> {
    execute(
        tx,
        "write setting",
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&key, &value],
    )
    .await?;
    match row(
        tx,
        "read setting",
        "SELECT value FROM settings WHERE key = $1",
        &[&key],
    )
    .await?
    {
        Some(r) => get(&r, 0),
        None => Err(tally_store::StoreError::failure(format!(
            "setting {key} vanished while it was written"
        ))),
    }
}

pub async fn hold_lease(
    c: &impl Db,
    job: &str,
    holder: &str,
    now: UnixSeconds,
    until: UnixSeconds,
) -> StoreResult<bool> {
    let held = row(
        c,
        "take lease",
        "INSERT INTO leases (job, holder, until) VALUES ($1, $2, $4)
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE leases.holder = excluded.holder OR leases.until <= $3
         RETURNING holder",
        &[&job, &holder, &now, &until],
    )
    .await?;
    Ok(match held {
        Some(r) => get::<String>(&r, 0)? == holder,
        None => false,
    })
}

pub async fn release_lease(c: &impl Db, job: &str, holder: &str) -> StoreResult<()> {
    execute(
        c,
        "release lease",
        "DELETE FROM leases WHERE job = $1 AND holder = $2",
        &[&job, &holder],
    )
    .await
    .map(drop)
}

/// One statement, so one round trip and atomic: two instances recording the same envelope at
/// once are ordered by its key.
pub async fn first_use(
    c: &impl Db,
    id: &[u8],
    now: UnixSeconds,
    forget_after: UnixSeconds,
) -> StoreResult<bool> {
    // New, or seen before but due to be forgotten: this use counts as the first.
    let recorded = execute(
        c,
        "record envelope",
        "INSERT INTO seen_envelopes (id, forget_after) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET forget_after = excluded.forget_after
         WHERE seen_envelopes.forget_after <= $3",
        &[&id, &forget_after, &now],
    )
    .await?;
    Ok(recorded == 1)
}

pub async fn sweep_expired(c: &impl Db, now: UnixSeconds) -> StoreResult<u64> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM seen_envelopes WHERE forget_after <= $1",
        "DELETE FROM session_windows WHERE expires_at <= $1",
        "DELETE FROM leases WHERE until <= $1",
    ] {
        removed += execute(c, "sweep", sql, &[&now]).await?;
    }
    Ok(removed)
}
