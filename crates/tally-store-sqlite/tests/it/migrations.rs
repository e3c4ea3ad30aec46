//! Opening databases of other schema versions.

use tally_store::Store;
use tally_store_sqlite::{SCHEMA_VERSION, SqliteStore};

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_database_with_a_negative_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", -3).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("never writes"), "{err}");
}

/// A version-5 database (before `admitted_at`) is upgraded and its registrations keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_database_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tally.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            include_str!("../../migrations/0001_init.sql"),
            include_str!("../../migrations/0002_license_types.sql"),
            include_str!("../../migrations/0003_portal.sql"),
            include_str!("../../migrations/0004_alerts.sql"),
            include_str!("../../migrations/0005_item_usage.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO organizations VALUES ('acme', 'acme', 'acme-default');
             INSERT INTO licenses VALUES ('L1', 'acme', 'L1', '{}', 'text', 1);
             INSERT INTO items VALUES ('a', 'L1', 'acme', 'per-device', 1, 9, '{}');
             INSERT INTO devices (item_id, device_uuid, handshake_code, first_seen, last_seen, active_until)
                 VALUES ('a', 'd1', 'acme-default', 5, 7, 9);
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.devices().await.unwrap()[0].last_seen, 7);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (version, admitted): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), admitted_at FROM devices",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, admitted), (SCHEMA_VERSION, 7));
}
