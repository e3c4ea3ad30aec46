//! A data-set generator for scale runs (`tally bench --registered N`): many handshake codes and
//! many registered devices written straight into a database no server has open, in one
//! transaction with prepared statements. It uses the license items already imported.

use std::path::Path;

use rusqlite::{Connection, params};
use tally_proto::UnixSeconds;
use tally_proto::license::{LicenseItem, LicenseType};
use tally_store::{StoreError, StoreResult};

use crate::licenses::parse_item;
use crate::{backend, migrate};

/// What to create.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Devices to register (uuids `seed-<n>`).
    pub devices: u64,
    /// Handshake codes to spread them over (`seed-00001`, …), each with every item of the
    /// organization in the default consumption order.
    pub handshake_codes: u32,
    /// The time of the registrations; they hold their place for the item's active window.
    pub now: UnixSeconds,
}

/// What was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub devices: u64,
    pub handshake_codes: u32,
    pub organization: String,
}

/// Seeds the database at `path` (which must exist, with a license imported) as `plan` says.
/// Devices fill the organization's per-device items one after another, within their quantity;
/// when there is not room for all of them nothing is written.
pub fn seed_devices(path: &Path, plan: &SeedPlan) -> StoreResult<SeedReport> {
    if !path.exists() {
        return Err(StoreError::NotFound(format!("database {}", path.display())));
    }
    let mut conn = Connection::open(path).map_err(backend("open database"))?;
    migrate::migrate(&mut conn)?;
    let items = per_device_items(&conn)?;
    let Some(organization) = items.first().map(|(_, org)| org.clone()) else {
        return Err(StoreError::NotFound(
            "a per-device license item to register devices on".into(),
        ));
    };
    let mut room = Vec::new();
    for (item, org) in &items {
        if *org == organization {
            let held: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2",
                    params![item.id, plan.now],
                    |r| r.get(0),
                )
                .map_err(backend("count registrations"))?;
            let free = item
                .quantity
                .saturating_sub(u64::try_from(held).unwrap_or(0));
            room.push((item.clone(), free));
        }
    }
    let total: u64 = room.iter().map(|(_, free)| free).sum();
    if total < plan.devices {
        return Err(StoreError::Conflict(format!(
            "the per-device items of organization {organization} have room for {total} more devices, not {}",
            plan.devices
        )));
    }
    let codes = plan.handshake_codes.max(1);
    let mut all_items: Vec<LicenseItem> = room.iter().map(|(i, _)| i.clone()).collect();
    tally_core::order::default_order(&mut all_items);

    let tx = conn.transaction().map_err(backend("begin seeding"))?;
    {
        let mut code_stmt = tx
            .prepare(
                "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
                 VALUES (?1, ?2, 'generated data set', 1, 0, ?3)",
            )
            .map_err(backend("prepare codes"))?;
        let mut attach = tx
            .prepare("INSERT INTO handshake_items (code, item_id, position) VALUES (?1, ?2, ?3)")
            .map_err(backend("prepare code items"))?;
        for n in 1..=codes {
            let code = code_name(n);
            code_stmt
                .execute(params![code, organization, plan.now])
                .map_err(|e| {
                    conflict_or_backend(e, "insert code", || {
                        format!("handshake code {code} already exists")
                    })
                })?;
            for (position, item) in all_items.iter().enumerate() {
                attach
                    .execute(params![code, item.id, position as i64])
                    .map_err(backend("attach item"))?;
            }
        }
        let mut device = tx
            .prepare(
                "INSERT INTO devices (item_id, device_uuid, handshake_code, first_seen, last_seen,
                                      admitted_at, active_until, units, active_day)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?4, ?5, 1, ?6)",
            )
            .map_err(backend("prepare devices"))?;
        let mut slots = room.iter();
        let mut current = slots.next();
        let mut used = 0u64;
        for n in 0..plan.devices {
            while let Some((_, free)) = current
                && used >= *free
            {
                current = slots.next();
                used = 0;
            }
            let Some((item, _)) = current else {
                return Err(StoreError::Conflict("no room left".into()));
            };
            let code = code_name(u32::try_from(n % u64::from(codes)).unwrap_or(0) + 1);
            let until =
                tally_core::admission::device_active_until(item, plan.now).max(plan.now + 1);
            device
                .execute(params![
                    item.id,
                    format!("seed-{n}"),
                    code,
                    plan.now,
                    until,
                    plan.now.div_euclid(86_400)
                ])
                .map_err(|e| {
                    conflict_or_backend(e, "insert device", || {
                        format!("device seed-{n} is already registered")
                    })
                })?;
            used += 1;
        }
    }
    crate::places::forget_all(&tx)?;
    tx.commit().map_err(backend("commit seeding"))?;
    // Fold the large write-ahead log into the database now rather than at the server's start.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(backend("checkpoint"))?;
    Ok(SeedReport {
        devices: plan.devices,
        handshake_codes: codes,
        organization,
    })
}

/// A uniqueness violation is a conflict with what the database already holds (described by
/// `conflict`); anything else a backend failure.
fn conflict_or_backend(
    e: rusqlite::Error,
    context: &str,
    conflict: impl FnOnce() -> String,
) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(conflict())
        }
        other => backend(context)(other),
    }
}

fn code_name(n: u32) -> String {
    format!("seed-{n:05}")
}

/// Per-device items with their organization, in import order.
fn per_device_items(c: &Connection) -> StoreResult<Vec<(LicenseItem, String)>> {
    let mut stmt = c
        .prepare("SELECT spec, organization FROM items ORDER BY rowid")
        .map_err(backend("read items"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(backend("read items"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend("read items"))?;
    let mut out = Vec::new();
    for (spec, org) in rows {
        let item = parse_item(&spec)?;
        if item.license_type == LicenseType::PerDevice {
            out.push((item, org));
        }
    }
    Ok(out)
}
