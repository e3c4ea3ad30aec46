//! Online backups: the copy holds every acknowledged write, while the writer keeps going.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tally_store_sqlite::{BackupError, backup_database, check_database};

use super::*;

fn batch(ids: Vec<String>) -> ReportBatch {
    ReportBatch {
        device_uuid: "d1".into(),
        handshake_code: "acme-default".into(),
        reports: ids
            .into_iter()
            .map(|report_id| ReportRow {
                report_id,
                slice: NOW / 180,
                counts: [("scan".to_string(), 1u64)].into(),
            })
            .collect(),
        received_at: NOW,
    }
}

fn report_ids(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT report_id FROM reports").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_reports_arrive_holds_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    // About 12 MiB, so that the copy takes several steps while the writer commits: a copy that
    // restarted at every commit would never finish.
    for i in 0..12 {
        let filler = format!("{i:x}").repeat(1 << 20);
        store
            .put_setting(&format!("filler-{i}"), &filler)
            .await
            .unwrap();
    }
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, acknowledged, stop) = (store.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (n..n + 20).map(|i| format!("r{i}")).collect();
                n += 20;
                let outcome = recorded(store.record_reports(batch(ids)).await.unwrap());
                acknowledged.lock().unwrap().extend(outcome.accepted);
            }
            n
        })
    };
    while acknowledged.lock().unwrap().len() < 2_000 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let source = dir.path().join("tally.db");
    let copy = dir.path().join("copy.db");
    let (from, to) = (source.clone(), copy.clone());
    let copying = tokio::task::spawn_blocking(move || backup_database(&from, &to));
    let checked = tokio::time::timeout(std::time::Duration::from_secs(60), copying)
        .await
        .expect("the copy finishes while the writer commits")
        .unwrap()
        .unwrap();
    let during = acknowledged.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(
        during > before.len(),
        "the writer kept committing during the backup"
    );
    assert_eq!(checked.schema_version, tally_store_sqlite::SCHEMA_VERSION);
    assert!(written as usize >= during);

    let in_copy = report_ids(&copy);
    let missing: Vec<&String> = before.iter().filter(|id| !in_copy.contains(*id)).collect();
    assert!(missing.is_empty(), "{} reports missing", missing.len());
    // The copy is one self-contained file that passes the same check a restore makes.
    assert!(!dir.path().join("copy.db-wal").exists());
    assert!(std::fs::metadata(&copy).unwrap().len() > 12 << 20);
    assert_eq!(check_database(&copy).unwrap(), checked);
    let reopened = SqliteStore::open(&copy).unwrap();
    assert_eq!(reopened.licenses().await.unwrap().len(), 1);
}

#[test]
fn files_that_are_not_sound_tally_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    assert!(matches!(
        check_database(&missing),
        Err(BackupError::Missing(_))
    ));
    assert!(matches!(
        backup_database(&missing, &dir.path().join("out.db")),
        Err(BackupError::Missing(_))
    ));
    assert!(!dir.path().join("none.db").exists(), "nothing was created");

    let text = dir.path().join("text.db");
    std::fs::write(&text, "not a database at all, just some text ".repeat(200)).unwrap();
    let err = check_database(&text).unwrap_err();
    assert!(matches!(err, BackupError::NotTally(_)), "{err}");

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;")
        .unwrap();
    let err = check_database(&other).unwrap_err();
    assert!(err.to_string().contains("no table"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_backup_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    registered(&store, "acme", &["d1"]).await;
    let to = dir.path().join("elsewhere.db");
    let from = dir.path().join("tally.db");
    tokio::task::spawn_blocking(move || backup_database(&from, &to))
        .await
        .unwrap()
        .unwrap();
    let mode = std::fs::metadata(dir.path().join("elsewhere.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "whatever the umask, a backup is private"
    );
}
