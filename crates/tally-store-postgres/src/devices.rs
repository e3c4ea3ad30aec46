//! Device registrations and the quota decision that creates them.

use deadpool_postgres::Transaction;
use tally_core::admission::{Ask, Decision, ItemState, decide};
use tally_core::live_state::{Answers, OwnPlace, item_state, questions};
use tally_proto::UnixSeconds;
use tally_proto::license::LicenseItem;
use tally_proto::slice::slice_of;
use tally_store::{Admission, AdmitRequest, DeviceRow, StoreResult};

use crate::connection::{Db, count, execute, get, row, rows, to_i64};

/// Locks the candidate items (in item order, so that two admissions never wait on each other in
/// a circle), reads each one's live state, lets the core rules decide and writes the
/// registration, all in one transaction: a report or an admission on another connection or
/// another instance waits for the lock, so nobody can take a place between the count and the
/// write.
pub async fn admit(tx: &Transaction<'_>, req: &AdmitRequest) -> StoreResult<Admission> {
    let mut ids: Vec<&str> = req.candidates.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    // The device's own registrations are read right after the lock, in the same round trip:
    // `biased` polls (and so sends) the lock first, and PostgreSQL runs pipelined statements in
    // order, each with a snapshot taken after the one before it finished.
    let ((), own) = tokio::try_join!(
        biased;
        lock_items(tx, &ids, "FOR UPDATE"),
        own_places(tx, &req.device_uuid, &ids)
    )?;
    let mut states = Vec::with_capacity(req.candidates.len());
    for item in &req.candidates {
        let own = own.get(item.id.as_str());
        states.push(live_state(tx, item, own, &req.device_uuid, &req.ask, req.now).await?);
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
        register(
            tx,
            &[Registration {
                request: req,
                item,
                active_until,
                units,
            }],
        )
        .await?;
        if exception > 0 {
            record_exception(tx, &item.id, slice_of(req.now), exception).await?;
        }
    }
    Ok(Admission { decision })
}

/// The admissions waiting together, in order. The candidates of all are locked, and the
/// devices' own registrations read, in one round trip; a device that already holds its place on
/// every candidate (nothing to count, see [`tally_core::live_state::questions`]) is decided at
/// once and its registration written with the others in one statement. Any other admission
/// first writes what was decided before it, then runs as [`admit`] does.
pub async fn admit_all(
    tx: &Transaction<'_>,
    requests: &[&AdmitRequest],
) -> StoreResult<Vec<Admission>> {
    let mut ids: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.candidates.iter().map(|i| i.id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let devices: Vec<&str> = requests.iter().map(|r| r.device_uuid.as_str()).collect();
    let ((), own) = tokio::try_join!(
        biased;
        lock_items(tx, &ids, "FOR UPDATE"),
        places_of(tx, &devices, &ids)
    )?;
    let mut own = own;
    let mut pending: Vec<Registration<'_>> = Vec::new();
    let mut decided = Vec::with_capacity(requests.len());
    for req in requests {
        let places: Vec<Option<OwnPlace>> = req
            .candidates
            .iter()
            .map(|i| own.get(&(req.device_uuid.clone(), i.id.clone())).copied())
            .collect();
        let nothing_to_count = req.candidates.iter().zip(&places).all(|(item, place)| {
            questions(item, place.as_ref(), &req.ask, req.now) == Default::default()
        });
        if !nothing_to_count {
            register(tx, &std::mem::take(&mut pending)).await?;
            let admission = admit(tx, req).await?;
            forget_places(&mut own, req);
            decided.push(admission);
            continue;
        }
        let states: Vec<ItemState> = places
            .iter()
            .map(|p| item_state(p.as_ref(), &Answers::default(), req.now))
            .collect();
        let decision = decide(&req.candidates, &states, &req.ask, req.now);
        if let Decision::Admit {
            index,
            active_until,
            units,
            exception,
        } = decision
            && let Some(item) = req.candidates.get(index)
        {
            pending.push(Registration {
                request: req,
                item,
                active_until,
                units,
            });
            own.insert(
                (req.device_uuid.clone(), item.id.clone()),
                OwnPlace {
                    active_until,
                    active_day: Some(req.now.div_euclid(86_400)),
                    units,
                },
            );
            if exception > 0 {
                record_exception(tx, &item.id, slice_of(req.now), exception).await?;
            }
        }
        decided.push(Admission { decision });
    }
    register(tx, &pending).await?;
    Ok(decided)
}

/// An admission decided and not yet written.
struct Registration<'a> {
    request: &'a AdmitRequest,
    item: &'a LicenseItem,
    active_until: UnixSeconds,
    units: u64,
}

/// Writes `registrations` in one statement; a later one of the same device and item wins.
async fn register(tx: &Transaction<'_>, registrations: &[Registration<'_>]) -> StoreResult<()> {
    let mut last: std::collections::BTreeMap<(&str, &str), &Registration<'_>> =
        std::collections::BTreeMap::new();
    for r in registrations {
        last.insert((r.item.id.as_str(), r.request.device_uuid.as_str()), r);
    }
    if last.is_empty() {
        return Ok(());
    }
    let rows: Vec<&Registration<'_>> = last.into_values().collect();
    let items: Vec<&str> = rows.iter().map(|r| r.item.id.as_str()).collect();
    let devices: Vec<&str> = rows
        .iter()
        .map(|r| r.request.device_uuid.as_str())
        .collect();
    let codes: Vec<&str> = rows
        .iter()
        .map(|r| r.request.handshake_code.as_str())
        .collect();
    let names: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.request.friendly_name.as_deref())
        .collect();
    let seen: Vec<i64> = rows.iter().map(|r| r.request.now).collect();
    let until: Vec<i64> = rows.iter().map(|r| r.active_until).collect();
    let units: Vec<i64> = rows.iter().map(|r| to_i64(r.units)).collect();
    let domains: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.request.ask.domain.as_deref())
        .collect();
    let days: Vec<i64> = rows
        .iter()
        .map(|r| r.request.now.div_euclid(86_400))
        .collect();
    execute(
        tx,
        "register devices",
        "INSERT INTO devices (item_id, device_uuid, handshake_code, friendly_name, first_seen,
                              last_seen, admitted_at, active_until, units, domain, active_day)
         SELECT i, d, c, n, s, s, s, u, k, m, y
         FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[],
                     $7::BIGINT[], $8::TEXT[], $9::BIGINT[]) AS r(i, d, c, n, s, u, k, m, y)
         ON CONFLICT (item_id, device_uuid) DO UPDATE SET
            handshake_code = excluded.handshake_code,
            friendly_name = COALESCE(excluded.friendly_name, devices.friendly_name),
            last_seen = excluded.last_seen,
            admitted_at = excluded.admitted_at,
            active_until = excluded.active_until,
            units = excluded.units,
            domain = COALESCE(excluded.domain, devices.domain),
            active_day = excluded.active_day",
        &[
            &items, &devices, &codes, &names, &seen, &until, &units, &domains, &days,
        ],
    )
    .await?;
    Ok(())
}

/// Drops what `own` knew of `req`'s device on its candidates (an admission written by [`admit`]
/// changed it); the device's next request in the batch then counts.
fn forget_places(
    own: &mut std::collections::HashMap<(String, String), OwnPlace>,
    req: &AdmitRequest,
) {
    for item in &req.candidates {
        own.remove(&(req.device_uuid.clone(), item.id.clone()));
    }
}

/// The registrations of `devices` on the items `ids`, by (device, item).
async fn places_of(
    c: &impl Db,
    devices: &[&str],
    ids: &[&str],
) -> StoreResult<std::collections::HashMap<(String, String), OwnPlace>> {
    rows(
        c,
        "read devices",
        "SELECT device_uuid, item_id, active_until, active_day, units FROM devices
         WHERE device_uuid = ANY($1) AND item_id = ANY($2)",
        &[&devices, &ids],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            (get(r, 0)?, get(r, 1)?),
            OwnPlace {
                active_until: get(r, 2)?,
                active_day: get(r, 3)?,
                units: count(r, 4)?,
            },
        ))
    })
    .collect()
}

/// Locks the rows of `ids` (sorted) with `mode` (`FOR UPDATE` to change places, `FOR SHARE` to
/// renew them).
pub async fn lock_items(c: &impl Db, ids: &[&str], mode: &str) -> StoreResult<()> {
    let sql = format!("SELECT item_id FROM items WHERE item_id = ANY($1) ORDER BY item_id {mode}");
    rows(c, "lock license items", &sql, &[&ids]).await?;
    Ok(())
}

/// The registrations of `device` on the items `ids`, by item.
async fn own_places(
    c: &impl Db,
    device: &str,
    ids: &[&str],
) -> StoreResult<std::collections::HashMap<String, OwnPlace>> {
    rows(
        c,
        "read device",
        "SELECT item_id, active_until, active_day, units FROM devices
         WHERE device_uuid = $1 AND item_id = ANY($2)",
        &[&device, &ids],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            get(r, 0)?,
            OwnPlace {
                active_until: get(r, 1)?,
                active_day: get(r, 2)?,
                units: count(r, 3)?,
            },
        ))
    })
    .collect()
}

/// Keeps the largest overuse seen in a slice.
pub async fn record_exception(c: &impl Db, item: &str, slice: i64, excess: u64) -> StoreResult<()> {
    execute(
        c,
        "record exception",
        "INSERT INTO exceptions (item_id, slice, excess) VALUES ($1, $2, $3)
         ON CONFLICT (item_id, slice) DO UPDATE SET excess = GREATEST(exceptions.excess, excluded.excess)",
        &[&item, &slice, &to_i64(excess)],
    )
    .await
    .map(drop)
}

/// Units of the registrations of `item` holding a place at `now`, and how many they are.
pub async fn held(c: &impl Db, item: &str, now: UnixSeconds) -> StoreResult<(u64, u64)> {
    let r = row(
        c,
        "count places",
        "SELECT COUNT(*), SUM(units)::BIGINT FROM devices WHERE item_id = $1 AND active_until > $2",
        &[&item, &now],
    )
    .await?;
    match r {
        Some(r) => Ok((count(&r, 0)?, count(&r, 1)?)),
        None => Ok((0, 0)),
    }
}

async fn scalar(
    c: &impl Db,
    what: &str,
    sql: &str,
    p: crate::connection::Params<'_>,
) -> StoreResult<u64> {
    match row(c, what, sql, p).await? {
        Some(r) => count(&r, 0),
        None => Ok(0),
    }
}

/// The live state of one item as the core rules need it (the counts
/// [`tally_core::live_state::questions`] asks for).
async fn live_state(
    c: &impl Db,
    item: &LicenseItem,
    own: Option<&OwnPlace>,
    device: &str,
    ask: &Ask,
    now: UnixSeconds,
) -> StoreResult<ItemState> {
    let asked = questions(item, own, ask, now);
    let mut answers = Answers::default();
    if asked.active_devices || asked.held_units {
        (answers.active_devices, answers.held_units) = held(c, &item.id, now).await?;
    }
    if let Some(day) = asked.other_devices_today {
        answers.other_devices_today = scalar(
            c,
            "count devices today",
            "SELECT COUNT(*) FROM devices
             WHERE item_id = $1 AND active_day = $2 AND active_until > $3 AND device_uuid <> $4",
            &[&item.id, &day, &now, &device],
        )
        .await?;
    }
    if let Some(slice) = asked.exceptions_since_slice {
        answers.exceptions = scalar(
            c,
            "count exceptions",
            "SELECT SUM(excess)::BIGINT FROM exceptions WHERE item_id = $1 AND slice >= $2",
            &[&item.id, &slice],
        )
        .await?;
    }
    if asked.usage_used {
        answers.usage_used = scalar(
            c,
            "read usage",
            "SELECT used FROM item_usage WHERE item_id = $1",
            &[&item.id],
        )
        .await?;
    }
    if let Some(domain) = &asked.domain {
        answers.domain_held = scalar(
            c,
            "find domain",
            "SELECT COUNT(*) FROM devices WHERE item_id = $1 AND active_until > $2 AND domain = $3",
            &[&item.id, &now, domain],
        )
        .await?
            > 0;
        if !answers.domain_held {
            answers.other_domains = scalar(
                c,
                "count domains",
                "SELECT COUNT(DISTINCT domain) FROM devices
                 WHERE item_id = $1 AND active_until > $2 AND domain IS NOT NULL AND domain <> $3",
                &[&item.id, &now, domain],
            )
            .await?;
        }
    }
    Ok(item_state(own, &answers, now))
}

fn device_row(r: &tokio_postgres::Row) -> StoreResult<DeviceRow> {
    Ok(DeviceRow {
        device_uuid: get(r, 0)?,
        item_id: get(r, 1)?,
        handshake_code: get(r, 2)?,
        friendly_name: get(r, 3)?,
        first_seen: get(r, 4)?,
        last_seen: get(r, 5)?,
        active_until: get(r, 6)?,
        units: count(r, 7)?,
        domain: get(r, 8)?,
    })
}

/// Registrations, most recently seen first; `page` = `(limit, offset)`, or all of them.
pub async fn list(c: &impl Db, page: Option<(u32, u64)>) -> StoreResult<Vec<DeviceRow>> {
    let (limit, offset): (Option<i64>, i64) = match page {
        Some((limit, offset)) => (Some(i64::from(limit)), to_i64(offset)),
        None => (None, 0),
    };
    rows(
        c,
        "list devices",
        "SELECT device_uuid, item_id, handshake_code, friendly_name, first_seen, last_seen,
                active_until, units, domain
         FROM devices ORDER BY last_seen DESC, device_uuid, item_id LIMIT $1 OFFSET $2",
        &[&limit, &offset],
    )
    .await?
    .iter()
    .map(device_row)
    .collect()
}

pub async fn count_all(c: &impl Db) -> StoreResult<u64> {
    scalar(c, "count devices", "SELECT COUNT(*) FROM devices", &[]).await
}

/// See [`tally_store::Store::trial`]: the first caller's insert wins; everyone reads its end.
pub async fn trial(
    tx: &Transaction<'_>,
    device: &str,
    now: UnixSeconds,
    length: i64,
) -> StoreResult<UnixSeconds> {
    let ends = now.saturating_add(length);
    execute(
        tx,
        "start trial",
        "INSERT INTO trials (device_uuid, started_at, ends_at) VALUES ($1, $2, $3)
         ON CONFLICT (device_uuid) DO NOTHING",
        &[&device, &now, &ends],
    )
    .await?;
    let r = row(
        tx,
        "read trial",
        "SELECT ends_at FROM trials WHERE device_uuid = $1",
        &[&device],
    )
    .await?;
    match r {
        Some(r) => get(&r, 0),
        None => Ok(ends),
    }
}

pub async fn unregister(tx: &Transaction<'_>, device: &str) -> StoreResult<u64> {
    execute(
        tx,
        "unregister device",
        "DELETE FROM devices WHERE device_uuid = $1",
        &[&device],
    )
    .await
}
