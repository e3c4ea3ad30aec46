//! `tally migrate` with the real binary: a demo server's SQLite database, with devices, reports,
//! usage and audit entries, copied into a fresh schema of the test database
//! (`TALLY_TEST_DATABASE_URL`), checked there table by table, then served from PostgreSQL.

use std::path::Path;

use tally_store::copy::TABLES;

use crate::cli::{command, fails_with};
use crate::postgres::{Schema, pg_column};
use crate::processes::{admin, free_port, report_scans, serve_demo as serve};

/// What the admin sees of the data: devices, codes, items and usage.
fn admin_view(d: &Path, listen: &str) -> Vec<String> {
    [
        &["devices", "--all"][..],
        &["handshakes"],
        &["items"],
        &["stats"],
    ]
    .iter()
    .map(|args| admin(d, listen, args))
    .collect()
}

/// The first column of each row of `sql` on the SQLite database `db`, as text.
fn sqlite_column(db: &Path, sql: &str) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Null => "NULL".to_owned(),
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => panic!("unexpected value {other:?}"),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Rows per copied table, in `TABLES` order.
fn counts(column: impl Fn(&str) -> Vec<String>) -> Vec<(&'static str, u64)> {
    TABLES
        .iter()
        .map(|t| {
            let n = column(&format!("SELECT COUNT(*) FROM {}", t.name));
            (t.name, n[0].parse().unwrap())
        })
        .collect()
}

/// `url` with a password the test server does not need (trust authentication ignores it), when
/// it names a user without one: the password must show nowhere.
fn with_password(url: &str) -> (String, Option<&'static str>) {
    const PASSWORD: &str = "pw-never-shown";
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((user, host)) = rest.split_once('@')
        && !user.contains(':')
    {
        return (
            format!("{scheme}://{user}:{PASSWORD}@{host}"),
            Some(PASSWORD),
        );
    }
    (url.to_owned(), None)
}

#[test]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
fn migrate_copies_a_stopped_servers_sqlite_database_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("data/tally.db");
    let listen = format!("127.0.0.1:{}", free_port());
    let schema = Schema::create("migrate");
    let url = schema.url();

    // A server with a device, reports, usage and admin actions in its audit log.
    let server = serve(d, &listen, &[]);
    report_scans(d, 3);
    report_scans(d, 2);
    admin(
        d,
        &listen,
        &[
            "create-handshake",
            "--organization",
            "demo",
            "--item",
            "DEMO-1-1",
            "--code",
            "demo-lab",
            "--description",
            "lab machines",
        ],
    );
    admin(
        d,
        &listen,
        &[
            "update-handshake",
            "demo-default",
            "--description",
            "front desk",
        ],
    );
    let before = admin_view(d, &listen);
    assert!(before[3].contains("demo-default\tscan\t5"), "{}", before[3]);

    // Not while a server writes to the database.
    let refused = fails_with(&mut command(
        d,
        &["migrate", "--to", &url, "--data-dir", "data"],
    ));
    assert!(refused.contains("stop the server first"), "{refused}");
    server.stop();

    let source = counts(|sql| sqlite_column(&db, sql));
    for table in [
        "devices",
        "reports",
        "usage_hourly",
        "handshakes",
        "audit_log",
    ] {
        let rows = source.iter().find(|(t, _)| *t == table).unwrap().1;
        assert!(rows > 0, "the test made no rows in {table}: {source:?}");
    }

    let (secret_url, password) = with_password(&url);
    let mut migrate = command(d, &["migrate", "--to", &secret_url, "--data-dir", "data"]);
    let out = migrate.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "migrate failed:\n{stdout}\n{stderr}");
    if let Some(password) = password {
        assert!(
            !stdout.contains(password) && !stderr.contains(password),
            "{stdout}\n{stderr}"
        );
    }
    for (table, rows) in &source {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([*table, &rows.to_string()])),
            "no line for {table} with {rows} rows:\n{stdout}"
        );
    }
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains(&format!("database_url = \"{url}\"")) && last.contains("identity keys"),
        "{last}"
    );

    // The same rows in PostgreSQL, table by table, and the same keys.
    let target = counts(|sql| pg_column(&url, sql));
    assert_eq!(target, source);
    for sql in [
        "SELECT DISTINCT device_uuid FROM devices",
        "SELECT code FROM handshakes",
        "SELECT report_id FROM reports",
        "SELECT id || ' ' || action || ' ' || detail FROM audit_log",
        "SELECT hour || ' ' || handshake_code || ' ' || feature || ' ' || count FROM usage_hourly",
        "SELECT license_id || ' ' || imported_at FROM licenses",
    ] {
        let (mut copied, mut original) = (pg_column(&url, sql), sqlite_column(&db, sql));
        copied.sort();
        original.sort();
        assert_eq!(copied, original, "{sql}");
    }
    // Flags became booleans.
    assert_eq!(
        pg_column(
            &url,
            "SELECT code || ' ' || enabled::text || ' ' || is_default::text FROM handshakes ORDER BY code"
        ),
        ["demo-default true true", "demo-lab true false"]
    );

    // A second copy into the now filled schema is refused and changes nothing.
    let refused = fails_with(&mut command(
        d,
        &["migrate", "--to", &url, "--data-dir", "data"],
    ));
    assert!(refused.contains("already holds Tally data"), "{refused}");
    assert_eq!(counts(|sql| pg_column(&url, sql)), source);

    // The server on PostgreSQL, with the same data directory (identity), serves the same data.
    let server = serve(d, &listen, &[("TALLY_DATABASE_URL", url.as_str())]);
    assert_eq!(admin_view(d, &listen), before);
    // The copied device goes on reporting, and new audit entries follow the copied ones.
    report_scans(d, 4);
    let stats = admin(d, &listen, &["stats"]);
    assert!(stats.contains("demo-default\tscan\t9"), "{stats}");
    admin(
        d,
        &listen,
        &[
            "update-handshake",
            "demo-lab",
            "--description",
            "after the move",
        ],
    );
    server.stop();
    let audit = source.iter().find(|(t, _)| *t == "audit_log").unwrap().1;
    let ids = pg_column(&url, "SELECT id FROM audit_log ORDER BY id");
    assert_eq!(ids.len() as u64, audit + 1, "{ids:?}");
    assert_eq!(
        ids.last().unwrap().parse::<u64>().unwrap(),
        ids[ids.len() - 2].parse::<u64>().unwrap() + 1
    );
    assert_eq!(
        pg_column(&url, "SELECT COUNT(*) FROM devices"),
        sqlite_column(&db, "SELECT COUNT(*) FROM devices")
    );
}
