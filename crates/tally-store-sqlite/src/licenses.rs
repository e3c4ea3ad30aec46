//! Settings, licenses and their items.

use rusqlite::{Connection, OptionalExtension, params};
use tally_proto::UnixSeconds;
use tally_proto::license::{License, LicenseItem, LicenseType};
use tally_store::{ImportOutcome, NewLicense, StoreError, StoreResult, StoredItem, StoredLicense};

use crate::{backend, corrupt};

pub fn get_setting(c: &Connection, key: &str) -> StoreResult<Option<String>> {
    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
    .map_err(backend("read setting"))
}

pub fn put_setting(c: &mut Connection, key: &str, value: &str) -> StoreResult<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map_err(backend("write setting"))?;
    Ok(())
}

/// See [`tally_store::Store::import_license`].
pub fn import(c: &mut Connection, new: &NewLicense) -> StoreResult<ImportOutcome> {
    let tx = c.savepoint().map_err(backend("begin import"))?;
    let license = &new.license;
    let org = &license.organization;
    let existing_default: Option<String> = tx
        .query_row(
            "SELECT default_code FROM organizations WHERE id = ?1",
            [&org.id],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("read organization"))?;
    let known: bool = tx
        .query_row(
            "SELECT 1 FROM licenses WHERE license_id = ?1",
            [&license.license_id],
            |_| Ok(()),
        )
        .optional()
        .map_err(backend("read license"))?
        .is_some();
    let payload = serde_json::to_string(license).map_err(corrupt("license"))?;
    if known {
        let default_code = existing_default.ok_or_else(|| {
            StoreError::failure(format!(
                "license {} has no organization row",
                license.license_id
            ))
        })?;
        // The same license activated again (for this server: the service checked) replaces the
        // file clients receive as proof; its items stay as they are.
        let changed = tx
            .execute(
                "UPDATE licenses SET activated_text = ?2 WHERE license_id = ?1 AND payload = ?3",
                params![license.license_id, new.activated_text, payload],
            )
            .map_err(backend("replace activation"))?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!(
                "license {} is already imported with other content",
                license.license_id
            )));
        }
        tx.commit().map_err(backend("commit import"))?;
        return Ok(ImportOutcome {
            newly_imported: false,
            default_code,
        });
    }
    let mut ids = std::collections::HashSet::new();
    for item in &license.items {
        if !ids.insert(item.id.as_str()) {
            return Err(StoreError::Conflict(format!(
                "item id {} appears twice in license {}",
                item.id, license.license_id
            )));
        }
        let taken: Option<String> = tx
            .query_row(
                "SELECT license_id FROM items WHERE item_id = ?1",
                [&item.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("read item"))?;
        if let Some(other) = taken {
            return Err(StoreError::Conflict(format!(
                "item id {} already belongs to license {other}",
                item.id
            )));
        }
    }

    let default_code = match existing_default {
        Some(code) => code,
        None => {
            tx.execute(
                "INSERT INTO organizations (id, name, default_code) VALUES (?1, ?2, ?3)",
                params![org.id, org.name, new.default_code],
            )
            .map_err(backend("insert organization"))?;
            let clash: bool = tx
                .query_row(
                    "SELECT 1 FROM handshakes WHERE code = ?1",
                    [&new.default_code],
                    |_| Ok(()),
                )
                .optional()
                .map_err(backend("read handshake"))?
                .is_some();
            if clash {
                return Err(StoreError::Conflict(format!(
                    "handshake code {} already exists; cannot make it the default of {}",
                    new.default_code, org.id
                )));
            }
            tx.execute(
                "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
                 VALUES (?1, ?2, ?3, 1, 1, ?4)",
                params![new.default_code, org.id, format!("Default handshake code of {}", org.name), new.imported_at],
            )
            .map_err(backend("insert default handshake"))?;
            new.default_code.clone()
        }
    };

    tx.execute(
        "INSERT INTO licenses (license_id, organization, alias, payload, activated_text, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![license.license_id, org.id, license.alias, payload, new.activated_text, new.imported_at],
    )
    .map_err(backend("insert license"))?;
    let mut position: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(position), -1) FROM handshake_items WHERE code = ?1",
            [&default_code],
            |r| r.get(0),
        )
        .map_err(backend("read positions"))?;
    for item in &license.items {
        let spec = serde_json::to_string(item).map_err(corrupt("item"))?;
        tx.execute(
            "INSERT INTO items (item_id, license_id, organization, license_type, quantity, end_at, spec)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                item.id,
                license.license_id,
                org.id,
                item.license_type.as_str(),
                i64::try_from(item.quantity).unwrap_or(i64::MAX),
                item.end,
                spec
            ],
        )
        .map_err(backend("insert item"))?;
        position += 1;
        tx.execute(
            "INSERT INTO handshake_items (code, item_id, position) VALUES (?1, ?2, ?3)",
            params![default_code, item.id, position],
        )
        .map_err(backend("attach item"))?;
    }
    tx.commit().map_err(backend("commit import"))?;
    Ok(ImportOutcome {
        newly_imported: true,
        default_code,
    })
}

pub fn list(c: &Connection) -> StoreResult<Vec<StoredLicense>> {
    let mut stmt = c
        .prepare(
            "SELECT payload, activated_text, imported_at FROM licenses ORDER BY imported_at, rowid",
        )
        .map_err(backend("list licenses"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend("list licenses"))?;
    let mut out = Vec::new();
    for row in rows {
        let (payload, activated_text, imported_at) = row.map_err(backend("read license"))?;
        let license: License = serde_json::from_str(&payload).map_err(corrupt("license"))?;
        out.push(StoredLicense {
            license,
            activated_text,
            imported_at,
        });
    }
    Ok(out)
}

/// Parses the `spec` column of an item.
pub fn parse_item(spec: &str) -> StoreResult<LicenseItem> {
    serde_json::from_str(spec).map_err(corrupt("item"))
}

pub fn items(c: &Connection, now: UnixSeconds) -> StoreResult<Vec<StoredItem>> {
    let mut stmt = c
        .prepare("SELECT license_id, organization, spec FROM items ORDER BY organization, end_at, item_id")
        .map_err(backend("list items"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(backend("list items"))?;
    let mut out = Vec::new();
    for row in rows {
        let (license_id, organization, spec) = row.map_err(backend("read item"))?;
        let item = parse_item(&spec)?;
        let used = used(c, &item, now)?;
        out.push(StoredItem {
            license_id,
            organization,
            item,
            used,
        });
    }
    Ok(out)
}

/// What the item's quota counts at `now` (see [`StoredItem::used`]).
pub fn used(c: &Connection, item: &LicenseItem, now: UnixSeconds) -> StoreResult<u64> {
    let sql = match item.license_type {
        LicenseType::PerDevice => {
            "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2"
        }
        LicenseType::PerActiveDevice => {
            "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2 AND active_day = ?2 / 86400"
        }
        LicenseType::ConcurrentDevice
        | LicenseType::ConcurrentInstance
        | LicenseType::PerInstance => {
            "SELECT SUM(units) FROM devices WHERE item_id = ?1 AND active_until > ?2"
        }
        LicenseType::PerUsage => "SELECT used FROM item_usage WHERE item_id = ?1 AND ?2 = ?2",
        LicenseType::PerDomain => {
            "SELECT COUNT(DISTINCT domain) FROM devices WHERE item_id = ?1 AND active_until > ?2 AND domain IS NOT NULL"
        }
    };
    let n: Option<i64> = c
        .query_row(sql, params![item.id, now], |r| r.get(0))
        .optional()
        .map_err(backend("count usage"))?
        .flatten();
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}
