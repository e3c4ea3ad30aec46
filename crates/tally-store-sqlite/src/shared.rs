//! Leases, used envelopes and report-session windows: the state instances sharing a store keep
//! in it (see [`tally_store::Store::shared`]).

use rusqlite::{Connection, OptionalExtension, params};
use tally_core::replay_window::{self, Window};
use tally_proto::UnixSeconds;
use tally_store::StoreResult;

use crate::backend;

pub fn setting_or_insert(c: &mut Connection, key: &str, value: &str) -> StoreResult<String> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        [key, value],
    )
    .map_err(backend("write setting"))?;
    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .map_err(backend("read setting"))
}

pub fn hold_lease(
    c: &mut Connection,
    job: &str,
    holder: &str,
    now: UnixSeconds,
    until: UnixSeconds,
) -> StoreResult<bool> {
    let held: Option<String> = c
        .query_row(
            "INSERT INTO leases (job, holder, until) VALUES (?1, ?2, ?4)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until
             WHERE leases.holder = excluded.holder OR leases.until <= ?3
             RETURNING holder",
            params![job, holder, now, until],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("take lease"))?;
    Ok(held.as_deref() == Some(holder))
}

pub fn release_lease(c: &mut Connection, job: &str, holder: &str) -> StoreResult<()> {
    c.execute(
        "DELETE FROM leases WHERE job = ?1 AND holder = ?2",
        [job, holder],
    )
    .map_err(backend("release lease"))?;
    Ok(())
}

pub fn first_use(
    c: &mut Connection,
    id: &[u8],
    now: UnixSeconds,
    forget_after: UnixSeconds,
) -> StoreResult<bool> {
    // New, or seen before but due to be forgotten: this use counts as the first.
    let recorded = c
        .execute(
            "INSERT INTO seen_envelopes (id, forget_after) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET forget_after = excluded.forget_after
             WHERE seen_envelopes.forget_after <= ?3",
            params![id, forget_after, now],
        )
        .map_err(backend("record envelope"))?;
    Ok(recorded == 1)
}

pub fn accept_session_message(
    c: &mut Connection,
    session: &[u8],
    seq: u64,
    expires_at: UnixSeconds,
) -> StoreResult<bool> {
    let window = c
        .query_row(
            "SELECT highest, seen FROM session_windows WHERE session = ?1",
            [session],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .optional()
        .map_err(backend("read session window"))?
        .map(|(highest, seen)| Window {
            highest: highest.cast_unsigned(),
            seen: seen.cast_unsigned(),
        })
        .unwrap_or_default();
    let Some(next) = replay_window::accept(window, seq) else {
        return Ok(false);
    };
    c.execute(
        "INSERT INTO session_windows (session, highest, seen, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (session) DO UPDATE SET highest = excluded.highest, seen = excluded.seen",
        params![
            session,
            next.highest.cast_signed(),
            next.seen.cast_signed(),
            expires_at
        ],
    )
    .map_err(backend("write session window"))?;
    Ok(true)
}

pub fn sweep_expired(c: &mut Connection, now: UnixSeconds) -> StoreResult<u64> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM seen_envelopes WHERE forget_after <= ?1",
        "DELETE FROM session_windows WHERE expires_at <= ?1",
        "DELETE FROM leases WHERE until <= ?1",
    ] {
        removed += c.execute(sql, [now]).map_err(backend("sweep"))? as u64;
    }
    Ok(removed)
}
