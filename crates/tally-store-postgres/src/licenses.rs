//! Settings, licenses and their items.

use deadpool_postgres::Transaction;
use tally_proto::UnixSeconds;
use tally_proto::license::{License, LicenseItem, LicenseType};
use tally_store::{ImportOutcome, NewLicense, StoreError, StoreResult, StoredItem, StoredLicense};

use crate::connection::{Db, corrupt, count, execute, get, row, rows, to_i64};

pub async fn get_setting(c: &impl Db, key: &str) -> StoreResult<Option<String>> {
    row(
        c,
        "read setting",
        "SELECT value FROM settings WHERE key = $1",
        &[&key],
    )
    .await?
    .map(|r| get(&r, 0))
    .transpose()
}

pub async fn put_setting(c: &impl Db, key: &str, value: &str) -> StoreResult<()> {
    execute(
        c,
        "write setting",
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await
    .map(drop)
}

/// See [`tally_store::Store::import_license`]. Imports of one organization are serialized by a
/// lock on its row (or, for a new organization, by the unique key its insert takes).
pub async fn import(tx: &Transaction<'_>, new: &NewLicense) -> StoreResult<ImportOutcome> {
    let license = &new.license;
    let org = &license.organization;
    let existing_default: Option<String> = row(
        tx,
        "read organization",
        "SELECT default_code FROM organizations WHERE id = $1 FOR UPDATE",
        &[&org.id],
    )
    .await?
    .map(|r| get(&r, 0))
    .transpose()?;
    let known = row(
        tx,
        "read license",
        "SELECT 1 FROM licenses WHERE license_id = $1",
        &[&license.license_id],
    )
    .await?
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
        let changed = execute(
            tx,
            "replace activation",
            "UPDATE licenses SET activated_text = $2 WHERE license_id = $1 AND payload = $3",
            &[&license.license_id, &new.activated_text, &payload],
        )
        .await?;
        if changed == 0 {
            return Err(StoreError::Conflict(format!(
                "license {} is already imported with other content",
                license.license_id
            )));
        }
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
        let taken = row(
            tx,
            "read item",
            "SELECT license_id FROM items WHERE item_id = $1",
            &[&item.id],
        )
        .await?;
        if let Some(other) = taken {
            let other: String = get(&other, 0)?;
            return Err(StoreError::Conflict(format!(
                "item id {} already belongs to license {other}",
                item.id
            )));
        }
    }

    let default_code = match existing_default {
        Some(code) => code,
        None => {
            execute(
                tx,
                "insert organization",
                "INSERT INTO organizations (id, name, default_code) VALUES ($1, $2, $3)",
                &[&org.id, &org.name, &new.default_code],
            )
            .await?;
            let clash = row(
                tx,
                "read handshake",
                "SELECT 1 FROM handshakes WHERE code = $1",
                &[&new.default_code],
            )
            .await?
            .is_some();
            if clash {
                return Err(StoreError::Conflict(format!(
                    "handshake code {} already exists; cannot make it the default of {}",
                    new.default_code, org.id
                )));
            }
            let description = format!("Default handshake code of {}", org.name);
            execute(
                tx,
                "insert default handshake",
                "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
                 VALUES ($1, $2, $3, TRUE, TRUE, $4)",
                &[&new.default_code, &org.id, &description, &new.imported_at],
            )
            .await?;
            new.default_code.clone()
        }
    };

    execute(
        tx,
        "insert license",
        "INSERT INTO licenses (license_id, organization, alias, payload, activated_text, imported_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &license.license_id,
            &org.id,
            &license.alias,
            &payload,
            &new.activated_text,
            &new.imported_at,
        ],
    )
    .await?;
    let last = row(
        tx,
        "read positions",
        "SELECT COALESCE(MAX(position), -1) FROM handshake_items WHERE code = $1",
        &[&default_code],
    )
    .await?;
    let mut position: i64 = match last {
        Some(r) => get(&r, 0)?,
        None => -1,
    };
    for item in &license.items {
        let spec = serde_json::to_string(item).map_err(corrupt("item"))?;
        execute(
            tx,
            "insert item",
            "INSERT INTO items (item_id, license_id, organization, license_type, quantity, end_at, spec)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &item.id,
                &license.license_id,
                &org.id,
                &item.license_type.as_str(),
                &to_i64(item.quantity),
                &item.end,
                &spec,
            ],
        )
        .await?;
        position += 1;
        execute(
            tx,
            "attach item",
            "INSERT INTO handshake_items (code, item_id, position) VALUES ($1, $2, $3)",
            &[&default_code, &item.id, &position],
        )
        .await?;
    }
    Ok(ImportOutcome {
        newly_imported: true,
        default_code,
    })
}

pub async fn list(c: &impl Db) -> StoreResult<Vec<StoredLicense>> {
    let mut out = Vec::new();
    for r in rows(
        c,
        "list licenses",
        "SELECT payload, activated_text, imported_at FROM licenses ORDER BY imported_at, imported_seq",
        &[],
    )
    .await?
    {
        let payload: String = get(&r, 0)?;
        let license: License = serde_json::from_str(&payload).map_err(corrupt("license"))?;
        out.push(StoredLicense {
            license,
            activated_text: get(&r, 1)?,
            imported_at: get(&r, 2)?,
        });
    }
    Ok(out)
}

/// Parses the `spec` column of an item.
pub fn parse_item(spec: &str) -> StoreResult<LicenseItem> {
    serde_json::from_str(spec).map_err(corrupt("item"))
}

pub async fn items(c: &impl Db, now: UnixSeconds) -> StoreResult<Vec<StoredItem>> {
    let mut out = Vec::new();
    for r in rows(
        c,
        "list items",
        "SELECT license_id, organization, spec FROM items ORDER BY organization, end_at, item_id",
        &[],
    )
    .await?
    {
        let spec: String = get(&r, 2)?;
        let item = parse_item(&spec)?;
        let used = used(c, &item, now).await?;
        out.push(StoredItem {
            license_id: get(&r, 0)?,
            organization: get(&r, 1)?,
            item,
            used,
        });
    }
    Ok(out)
}

/// What the item's quota counts at `now` (see [`StoredItem::used`]).
async fn used(c: &impl Db, item: &LicenseItem, now: UnixSeconds) -> StoreResult<u64> {
    let today = now.div_euclid(86_400);
    let found = match item.license_type {
        LicenseType::PerDevice => {
            row(
                c,
                "count devices",
                "SELECT COUNT(*) FROM devices WHERE item_id = $1 AND active_until > $2",
                &[&item.id, &now],
            )
            .await?
        }
        LicenseType::PerActiveDevice => {
            row(
                c,
                "count devices today",
                "SELECT COUNT(*) FROM devices WHERE item_id = $1 AND active_until > $2 AND active_day = $3",
                &[&item.id, &now, &today],
            )
            .await?
        }
        LicenseType::ConcurrentDevice
        | LicenseType::ConcurrentInstance
        | LicenseType::PerInstance => {
            row(
                c,
                "count seats",
                "SELECT SUM(units)::BIGINT FROM devices WHERE item_id = $1 AND active_until > $2",
                &[&item.id, &now],
            )
            .await?
        }
        LicenseType::PerUsage => {
            row(
                c,
                "read usage",
                "SELECT used FROM item_usage WHERE item_id = $1",
                &[&item.id],
            )
            .await?
        }
        LicenseType::PerDomain => {
            row(
                c,
                "count domains",
                "SELECT COUNT(DISTINCT domain) FROM devices
                 WHERE item_id = $1 AND active_until > $2 AND domain IS NOT NULL",
                &[&item.id, &now],
            )
            .await?
        }
    };
    match found {
        Some(r) => count(&r, 0),
        None => Ok(0),
    }
}
