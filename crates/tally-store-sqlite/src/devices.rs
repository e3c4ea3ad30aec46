//! Device registrations and the quota decision that creates them.

use rusqlite::{Connection, OptionalExtension, params};
use tally_core::admission::{Ask, Decision, ItemState, decide};
use tally_core::live_state::{Answers, OwnPlace, item_state, questions};
use tally_proto::UnixSeconds;
use tally_proto::license::LicenseItem;
use tally_proto::slice::slice_of;
use tally_store::{Admission, AdmitRequest, DeviceRow, StoreResult};

use crate::backend;
use crate::places::{self, Place};
use crate::savepoint::Savepoint;

/// Reads every candidate's live state, lets the core rules decide, and writes the registration,
/// all in one `BEGIN IMMEDIATE` transaction on the writer: nobody else can take a place between
/// the count and the write.
pub fn admit(c: &mut Connection, req: &AdmitRequest) -> StoreResult<Admission> {
    let tx = Savepoint::begin(c)?;
    let mut states = Vec::with_capacity(req.candidates.len());
    let mut before = Vec::with_capacity(req.candidates.len());
    for item in &req.candidates {
        let (state, own) = live_state(&tx, item, &req.device_uuid, &req.ask, req.now)?;
        states.push(state);
        before.push(own);
    }
    let decision = decide(&req.candidates, &states, &req.ask, req.now);
    if let Decision::Admit {
        index,
        active_until,
        units,
        exception,
    } = decision
        && let Some(item) = req.candidates.get(index)
    {
        let today = req.now.div_euclid(86_400);
        tx.prepare_cached(
            "INSERT INTO devices (item_id, device_uuid, handshake_code, friendly_name, first_seen,
                                  last_seen, admitted_at, active_until, units, domain, active_day)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (item_id, device_uuid) DO UPDATE SET
                handshake_code = excluded.handshake_code,
                friendly_name = COALESCE(excluded.friendly_name, devices.friendly_name),
                last_seen = excluded.last_seen,
                admitted_at = excluded.admitted_at,
                active_until = excluded.active_until,
                units = excluded.units,
                domain = COALESCE(excluded.domain, devices.domain),
                active_day = excluded.active_day",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                item.id,
                req.device_uuid,
                req.handshake_code,
                req.friendly_name,
                req.now,
                active_until,
                to_i64(units),
                req.ask.domain,
                today
            ])
        })
        .map_err(backend("register device"))?;
        places::changed(
            &tx,
            &item.id,
            before.get(index).copied().flatten(),
            Some(Place {
                active_until,
                units,
            }),
        )?;
        if exception > 0 {
            record_exception(&tx, &item.id, slice_of(req.now), exception)?;
        }
    }
    tx.commit()?;
    Ok(Admission { decision })
}

pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Keeps the largest overuse seen in a slice.
pub fn record_exception(c: &Connection, item: &str, slice: i64, excess: u64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO exceptions (item_id, slice, excess) VALUES (?1, ?2, ?3)
         ON CONFLICT (item_id, slice) DO UPDATE SET excess = MAX(excess, excluded.excess)",
        params![item, slice, to_i64(excess)],
    )
    .map_err(backend("record exception"))?;
    Ok(())
}

fn count(c: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<i64> {
    c.query_row(sql, p, |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(|v| v.flatten().unwrap_or(0))
        .map_err(backend("count registrations"))
}

/// The live state of one item as the core rules need it (the counts
/// [`tally_core::live_state::questions`] asks for), and the device's own registration on it (for
/// the place counters).
fn live_state(
    c: &Connection,
    item: &LicenseItem,
    device: &str,
    ask: &Ask,
    now: UnixSeconds,
) -> StoreResult<(ItemState, Option<Place>)> {
    let own = c
        .prepare_cached(
            "SELECT active_until, active_day, units FROM devices WHERE item_id = ?1 AND device_uuid = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![item.id, device], |r| {
                Ok(OwnPlace {
                    active_until: r.get(0)?,
                    active_day: r.get(1)?,
                    units: to_u64(r.get(2)?),
                })
            })
            .optional()
        })
        .map_err(backend("read device"))?;
    let asked = questions(item, own.as_ref(), ask, now);
    let mut answers = Answers::default();
    if asked.active_devices || asked.held_units {
        let held = places::held(c, &item.id, now)?;
        answers.active_devices = held.devices;
        answers.held_units = held.units;
    }
    if let Some(day) = asked.other_devices_today {
        answers.other_devices_today = to_u64(count(
            c,
            "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_day = ?2 AND active_until > ?3 AND device_uuid <> ?4",
            params![item.id, day, now, device],
        )?);
    }
    if let Some(slice) = asked.exceptions_since_slice {
        answers.exceptions = to_u64(count(
            c,
            "SELECT SUM(excess) FROM exceptions WHERE item_id = ?1 AND slice >= ?2",
            params![item.id, slice],
        )?);
    }
    if asked.usage_used {
        answers.usage_used = to_u64(count(
            c,
            "SELECT used FROM item_usage WHERE item_id = ?1",
            params![item.id],
        )?);
    }
    if let Some(domain) = &asked.domain {
        answers.domain_held = count(
            c,
            "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2 AND domain = ?3",
            params![item.id, now, domain],
        )? > 0;
        if !answers.domain_held {
            answers.other_domains = to_u64(count(
                c,
                "SELECT COUNT(DISTINCT domain) FROM devices
                 WHERE item_id = ?1 AND active_until > ?2 AND domain IS NOT NULL AND domain <> ?3",
                params![item.id, now, domain],
            )?);
        }
    }
    let place = own.map(|p| Place {
        active_until: p.active_until,
        units: p.units,
    });
    Ok((item_state(own.as_ref(), &answers, now), place))
}

/// Registrations, most recently seen first; `page` = `(limit, offset)`, or all of them.
pub fn list(c: &Connection, page: Option<(u32, u64)>) -> StoreResult<Vec<DeviceRow>> {
    let (limit, offset) = match page {
        Some((limit, offset)) => (i64::from(limit), to_i64(offset)),
        None => (-1, 0),
    };
    let mut stmt = c
        .prepare_cached(
            "SELECT device_uuid, item_id, handshake_code, friendly_name, first_seen, last_seen,
                    active_until, units, domain
             FROM devices ORDER BY last_seen DESC, device_uuid, item_id LIMIT ?1 OFFSET ?2",
        )
        .map_err(backend("list devices"))?;
    let rows = stmt
        .query_map(params![limit, offset], |r| {
            Ok(DeviceRow {
                device_uuid: r.get(0)?,
                item_id: r.get(1)?,
                handshake_code: r.get(2)?,
                friendly_name: r.get(3)?,
                first_seen: r.get(4)?,
                last_seen: r.get(5)?,
                active_until: r.get(6)?,
                units: to_u64(r.get(7)?),
                domain: r.get(8)?,
            })
        })
        .map_err(backend("list devices"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read device"))
}

pub fn count_all(c: &Connection) -> StoreResult<u64> {
    c.query_row("SELECT COUNT(*) FROM devices", [], |r| r.get::<_, i64>(0))
        .map(to_u64)
        .map_err(backend("count devices"))
}

/// See [`tally_store::Store::trial`].
pub fn trial(
    c: &mut Connection,
    device: &str,
    now: UnixSeconds,
    length: i64,
) -> StoreResult<UnixSeconds> {
    let tx = c.savepoint().map_err(backend("begin trial"))?;
    let existing: Option<i64> = tx
        .query_row(
            "SELECT ends_at FROM trials WHERE device_uuid = ?1",
            [device],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("read trial"))?;
    let ends = match existing {
        Some(e) => e,
        None => {
            let ends = now.saturating_add(length);
            tx.execute(
                "INSERT INTO trials (device_uuid, started_at, ends_at) VALUES (?1, ?2, ?3)",
                params![device, now, ends],
            )
            .map_err(backend("start trial"))?;
            ends
        }
    };
    tx.commit().map_err(backend("commit trial"))?;
    Ok(ends)
}

pub fn unregister(c: &mut Connection, device: &str) -> StoreResult<u64> {
    let tx = c.savepoint().map_err(backend("begin unregister"))?;
    let rows: Vec<(String, Place)> = {
        let mut stmt = tx
            .prepare("SELECT item_id, active_until, units FROM devices WHERE device_uuid = ?1")
            .map_err(backend("read registrations"))?;
        stmt.query_map([device], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Place {
                    active_until: r.get(1)?,
                    units: to_u64(r.get(2)?),
                },
            ))
        })
        .map_err(backend("read registrations"))?
        .collect::<Result<_, _>>()
        .map_err(backend("read registration"))?
    };
    let n = tx
        .execute("DELETE FROM devices WHERE device_uuid = ?1", [device])
        .map_err(backend("unregister device"))?;
    for (item, place) in rows {
        places::changed(&tx, &item, Some(place), None)?;
    }
    tx.commit().map_err(backend("commit unregister"))?;
    Ok(n as u64)
}
