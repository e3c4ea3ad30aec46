//! Places held per license item, maintained instead of counted.
//!
//! `item_places` holds, per item, how many registrations (and units) have
//! `active_until > swept_until`. Every write that creates, renews or removes a registration
//! adjusts it ([`changed`]); reading it for an admission ([`held`]) first retires the
//! registrations that lapsed since `swept_until` — a short range of the `(item_id,
//! active_until)` index — and moves `swept_until` to now. The result equals counting
//! `active_until > now`, without visiting every registration of a large item. A missing row is
//! rebuilt by counting; a clock that went back before `swept_until` is answered by counting too,
//! so the counters can never admit more than a count would.

use rusqlite::{Connection, OptionalExtension, params};
use tally_proto::UnixSeconds;
use tally_store::StoreResult;

use crate::backend;

/// Registrations holding a place on an item, and their units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub devices: u64,
    pub units: u64,
}

/// One registration's state as the counters see it.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub active_until: UnixSeconds,
    pub units: u64,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Counts registrations of `item` with `active_until` in `(after, until]` (`until = None`: no
/// upper bound).
fn count_range(
    c: &Connection,
    item: &str,
    after: UnixSeconds,
    until: Option<UnixSeconds>,
) -> StoreResult<Held> {
    let (n, units): (i64, Option<i64>) = match until {
        Some(until) => c
            .prepare_cached(
                "SELECT COUNT(*), SUM(units) FROM devices
                 WHERE item_id = ?1 AND active_until > ?2 AND active_until <= ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![item, after, until], |r| Ok((r.get(0)?, r.get(1)?)))
            }),
        None => c
            .prepare_cached(
                "SELECT COUNT(*), SUM(units) FROM devices WHERE item_id = ?1 AND active_until > ?2",
            )
            .and_then(|mut s| s.query_row(params![item, after], |r| Ok((r.get(0)?, r.get(1)?)))),
    }
    .map_err(backend("count places"))?;
    Ok(Held {
        devices: to_u64(n),
        units: to_u64(units.unwrap_or(0)),
    })
}

fn read(c: &Connection, item: &str) -> StoreResult<Option<(Held, UnixSeconds)>> {
    c.prepare_cached("SELECT held, held_units, swept_until FROM item_places WHERE item_id = ?1")
        .and_then(|mut s| {
            s.query_row([item], |r| {
                Ok((
                    Held {
                        devices: to_u64(r.get(0)?),
                        units: to_u64(r.get(1)?),
                    },
                    r.get(2)?,
                ))
            })
            .optional()
        })
        .map_err(backend("read places"))
}

fn write(c: &Connection, item: &str, held: Held, swept_until: UnixSeconds) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO item_places (item_id, held, held_units, swept_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (item_id) DO UPDATE SET held = excluded.held,
             held_units = excluded.held_units, swept_until = excluded.swept_until",
    )
    .and_then(|mut s| {
        s.execute(params![
            item,
            to_i64(held.devices),
            to_i64(held.units),
            swept_until
        ])
    })
    .map_err(backend("write places"))?;
    Ok(())
}

/// Registrations of `item` holding a place at `now` (`active_until > now`), and their units.
pub fn held(c: &Connection, item: &str, now: UnixSeconds) -> StoreResult<Held> {
    match read(c, item)? {
        None => {
            let held = count_range(c, item, now, None)?;
            write(c, item, held, now)?;
            Ok(held)
        }
        // The clock went back: the counters no longer cover (now, swept_until]; count.
        Some((_, swept_until)) if now < swept_until => count_range(c, item, now, None),
        Some((held, swept_until)) if now == swept_until => Ok(held),
        Some((held, swept_until)) => {
            let lapsed = count_range(c, item, swept_until, Some(now))?;
            let held = Held {
                devices: held.devices.saturating_sub(lapsed.devices),
                units: held.units.saturating_sub(lapsed.units),
            };
            write(c, item, held, now)?;
            Ok(held)
        }
    }
}

/// Adjusts the counters of `item` for a registration that went from `before` to `after` (`None`:
/// absent). Call it in the transaction that writes the registration.
pub fn changed(
    c: &Connection,
    item: &str,
    before: Option<Place>,
    after: Option<Place>,
) -> StoreResult<()> {
    // Without a row there is nothing to keep exact: the next read counts.
    let Some((mut held, swept_until)) = read(c, item)? else {
        return Ok(());
    };
    let counted = |p: Option<Place>| p.filter(|p| p.active_until > swept_until);
    let (was, is) = (counted(before), counted(after));
    if was.map(|p| p.units) == is.map(|p| p.units) {
        return Ok(());
    }
    if let Some(p) = was {
        held.devices = held.devices.saturating_sub(1);
        held.units = held.units.saturating_sub(p.units);
    }
    if let Some(p) = is {
        held.devices = held.devices.saturating_add(1);
        held.units = held.units.saturating_add(p.units);
    }
    write(c, item, held, swept_until)
}

/// Forgets the counters of every item (they are rebuilt by counting on next use); for bulk
/// writes such as the data-set generator.
pub fn forget_all(c: &Connection) -> StoreResult<()> {
    c.execute("DELETE FROM item_places", [])
        .map_err(backend("forget places"))?;
    Ok(())
}
