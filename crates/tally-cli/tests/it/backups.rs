//! Backups with the real binary: `tally backup` of a running server, `tally restore` into its
//! stopped data directory, and the periodic backups a server makes and prunes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{fails, ok};
use crate::processes::{free_port, report_scans, serve_demo as serve};

fn stats(d: &Path, listen: &str) -> String {
    let server = format!("http://{listen}");
    ok(
        d,
        &["admin", "--server", &server, "--data-dir", "data", "stats"],
    )
}

#[test]
fn a_backup_of_a_running_server_restores_every_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    let server = serve(d, &listen, &[]);
    report_scans(d, 3);
    let file = ok(d, &["backup", "--data-dir", "data"]);
    let file = file.trim();
    assert!(
        file.starts_with("data/backups/tally-") && file.ends_with("Z.db"),
        "{file}"
    );
    assert!(d.join(file).is_file());
    // Acknowledged after the backup: not in it.
    report_scans(d, 4);
    assert!(stats(d, &listen).contains("demo-default\tscan\t7"));

    let refused = fails(d, &["restore", file, "--data-dir", "data"]);
    assert!(
        refused.contains("in use by another Tally server"),
        "{refused}"
    );
    drop(server);
    let out = ok(d, &["restore", file, "--data-dir", "data"]);
    assert!(
        out.contains("restored") && out.contains("replacing the previous database"),
        "{out}"
    );
    assert!(!d.join("data/tally.db-wal").exists());

    let server = serve(d, &listen, &[]);
    let stats = stats(d, &listen);
    assert!(stats.contains("demo-default\tscan\t3"), "{stats}");
    drop(server);

    // A file that is not a Tally database is refused and the database is left alone.
    std::fs::write(d.join("junk.db"), "junk".repeat(1000)).unwrap();
    let refused = fails(d, &["restore", "junk.db", "--data-dir", "data"]);
    assert!(refused.contains("cannot be restored"), "{refused}");
    assert!(!d.join("data/tally.db.restoring").exists());
}

fn backup_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tally-") && n.ends_with(".db"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_server_backs_up_periodically_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [
        ("TALLY_BACKUP_INTERVAL_SECONDS", "1"),
        ("TALLY_BACKUP_KEEP", "2"),
        ("TALLY_BACKUP_DIR", "saved"),
    ];
    let server = serve(d, &listen, &env);
    report_scans(d, 5);
    let saved = d.join("saved");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = backup_names(&saved);
        assert!(names.len() <= 3, "{names:?}");
        seen.extend(names.iter().cloned());
        if seen.len() >= 4 && names.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "backups seen: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    // The newest periodic backup is a Tally database holding the reports.
    let newest = saved.join(backup_names(&saved).last().unwrap());
    let out = ok(
        d,
        &["restore", newest.to_str().unwrap(), "--data-dir", "data"],
    );
    assert!(out.contains("restored"), "{out}");
    let _server = serve(d, &listen, &[]);
    let stats = stats(d, &listen);
    assert!(stats.contains("demo-default\tscan\t5"), "{stats}");

    // `--out` writes where it is told, while the server runs.
    let out = ok(d, &["backup", "--data-dir", "data", "--out", "manual.db"]);
    assert_eq!(out.trim(), "manual.db");
    assert!(d.join("manual.db").is_file());
}
