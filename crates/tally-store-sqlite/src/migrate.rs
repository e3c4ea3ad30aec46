//! Schema migrations, embedded in the binary and tracked with `PRAGMA user_version`.

use rusqlite::Connection;
use tally_store::{StoreError, StoreResult};

use crate::backend;

/// Migrations in order; the schema version is the number applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_license_types",
        include_str!("../migrations/0002_license_types.sql"),
    ),
    ("0003_portal", include_str!("../migrations/0003_portal.sql")),
    ("0004_alerts", include_str!("../migrations/0004_alerts.sql")),
    (
        "0005_item_usage",
        include_str!("../migrations/0005_item_usage.sql"),
    ),
    (
        "0006_admitted_at",
        include_str!("../migrations/0006_admitted_at.sql"),
    ),
    (
        "0007_item_places",
        include_str!("../migrations/0007_item_places.sql"),
    ),
    (
        "0008_shared_state",
        include_str!("../migrations/0008_shared_state.sql"),
    ),
    (
        "0009_alert_deliveries",
        include_str!("../migrations/0009_alert_deliveries.sql"),
    ),
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], each migration in its own transaction. A database
/// written by a newer Tally is refused rather than misread.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend("read schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::failure(format!(
            "the database has schema version {current}, newer than this Tally knows ({SCHEMA_VERSION}); upgrade Tally"
        )));
    }
    // Tally never writes a negative version: such a file was not made by Tally.
    let applied = usize::try_from(current).map_err(|_| {
        StoreError::failure(format!(
            "the database has schema version {current}, which Tally never writes; is it a Tally database?"
        ))
    })?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(backend("begin migration"))?;
        tx.execute_batch(sql).map_err(backend(name))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(backend("record schema version"))?;
        tx.commit().map_err(backend("commit migration"))?;
        tracing::info!(migration = name, "applied database migration");
    }
    Ok(())
}
