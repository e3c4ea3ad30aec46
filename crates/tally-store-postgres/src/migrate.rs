//! Schema migrations, embedded in the binary and tracked in `tally_schema`. Instances starting
//! together take an advisory lock, so exactly one applies each migration.

use deadpool_postgres::Object;
use tally_store::{StoreError, StoreResult};

use crate::connection::backend;

/// Migrations in order; the schema version is the number applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_striped_usage",
        include_str!("../migrations/0002_striped_usage.sql"),
    ),
    (
        "0003_alert_deliveries",
        include_str!("../migrations/0003_alert_deliveries.sql"),
    ),
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Key of the advisory lock held while migrating ("tally" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_616c_6c79;

/// Brings the database to [`SCHEMA_VERSION`], each migration in its own transaction. A database
/// written by a newer Tally is refused rather than misread.
pub async fn migrate(client: &mut Object) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend("wait for the migration lock"))?;
    let outcome = apply(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend("release the migration lock"));
    outcome.and(unlocked.map(drop))
}

async fn apply(client: &mut Object) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tally_schema (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(backend("create the schema table"))?;
    let current: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM tally_schema", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(backend("read schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::failure(format!(
            "the database has schema version {current}, newer than this Tally knows ({SCHEMA_VERSION}); upgrade Tally"
        )));
    }
    let applied = usize::try_from(current).map_err(|_| {
        StoreError::failure(format!(
            "the database has schema version {current}, which Tally never writes; is it a Tally database?"
        ))
    })?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let version = index as i64 + 1;
        let tx = client
            .transaction()
            .await
            .map_err(backend("begin migration"))?;
        tx.batch_execute(sql).await.map_err(backend(name))?;
        tx.execute(
            "INSERT INTO tally_schema (version, name) VALUES ($1, $2)",
            &[&version, name],
        )
        .await
        .map_err(backend("record schema version"))?;
        tx.commit().await.map_err(backend("commit migration"))?;
        tracing::info!(migration = name, "applied database migration");
    }
    Ok(())
}
