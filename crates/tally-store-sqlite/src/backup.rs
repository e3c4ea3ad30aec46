//! Online backups: a consistent copy of the database taken while the server keeps writing, and
//! the check that a file is a sound Tally database (before it is kept as a backup or restored).
//!
//! The copy reads through its own connection, inside one read transaction, with SQLite's online
//! backup API. In WAL mode a reader never blocks the writer, and the open read transaction pins
//! one snapshot: commits made meanwhile go to the WAL and neither enter the copy nor restart it.
//! The copy is made in steps with short pauses so that it does not hog the disk.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::SCHEMA_VERSION;

/// Pages copied per step (4 MiB with the default 4 KiB pages).
const PAGES_PER_STEP: i32 = 1024;
/// Pause between steps, and the wait when the destination is momentarily locked.
const PAUSE: Duration = Duration::from_millis(2);
/// Tables every Tally database has since the first migration.
const TALLY_TABLES: &[&str] = &["licenses", "devices", "reports", "usage_hourly"];

/// Why a backup could not be made, or a file is not a usable Tally database.
#[derive(Debug)]
pub enum BackupError {
    /// The file does not exist (SQLite would otherwise create an empty database).
    Missing(PathBuf),
    /// SQLite failed while doing `context`.
    Sqlite {
        context: &'static str,
        source: rusqlite::Error,
    },
    /// A file operation failed.
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    /// `PRAGMA integrity_check` found damage.
    Damaged(String),
    /// The file is an SQLite database, but not one Tally wrote (or a newer Tally did).
    NotTally(String),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(path) => write!(f, "no database at {}", path.display()),
            Self::Sqlite { context, source } => write!(f, "{context}: {source}"),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Damaged(report) => write!(f, "the database is damaged: {report}"),
            Self::NotTally(why) => write!(f, "not a Tally database: {why}"),
        }
    }
}

impl std::error::Error for BackupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sqlite { source, .. } => Some(source),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn sqlite(context: &'static str) -> impl Fn(rusqlite::Error) -> BackupError {
    move |source| BackupError::Sqlite { context, source }
}

fn io(context: &'static str) -> impl Fn(std::io::Error) -> BackupError {
    move |source| BackupError::Io { context, source }
}

/// What the check of a database found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedDatabase {
    /// The schema version (`PRAGMA user_version`); older ones are migrated when served.
    pub schema_version: i64,
}

/// Copies the live database at `source` into a new file `dest` (replaced if present), then
/// flushes it to disk and checks it. The store's writer is not involved: it keeps committing
/// meanwhile, and the copy holds everything committed before the copy began.
///
/// Blocking: run it on a blocking thread. On failure `dest` may be left behind, incomplete.
pub fn backup_database(source: &Path, dest: &Path) -> Result<CheckedDatabase, BackupError> {
    let src = open_existing(source)?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite("set busy timeout"))?;
    // One read transaction for the whole copy: one snapshot, however long the copy takes.
    src.execute_batch("BEGIN DEFERRED")
        .map_err(sqlite("begin the read snapshot"))?;
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(sqlite("read the schema"))?;
    match std::fs::remove_file(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove an old partial copy")(e)),
    }
    create_private(dest).map_err(io("create the copy"))?;
    let mut dst = Connection::open(dest).map_err(sqlite("create the copy"))?;
    copy_pages(&src, &mut dst)?;
    src.execute_batch("COMMIT")
        .map_err(sqlite("end the read snapshot"))?;
    // The copy carries the source's WAL flag; a rollback journal makes it one self-contained file.
    dst.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    })
    .map_err(sqlite("make the copy self-contained"))?;
    let checked = check_connection(&dst)?;
    dst.close().map_err(|(_, e)| sqlite("close the copy")(e))?;
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(io("flush the copy to disk"))?;
    Ok(checked)
}

/// Creates `path` empty and readable by its owner only, whatever the process's umask (a backup
/// may be written outside the data directory): SQLite then opens it as an empty database and
/// keeps its mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

fn copy_pages(src: &Connection, dst: &mut Connection) -> Result<(), BackupError> {
    let backup = Backup::new(src, dst).map_err(sqlite("start the copy"))?;
    loop {
        match backup.step(PAGES_PER_STEP).map_err(sqlite("copy pages"))? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => std::thread::sleep(PAUSE),
            // A future variant: keep stepping, SQLite says when it is done or failed.
            _ => std::thread::sleep(PAUSE),
        }
    }
}

/// Checks that the file at `path` is an undamaged Tally database this version can serve
/// (`PRAGMA integrity_check`, the schema version and Tally's tables). Blocking.
pub fn check_database(path: &Path) -> Result<CheckedDatabase, BackupError> {
    let conn = open_existing(path)?;
    let checked = check_connection(&conn)?;
    conn.close()
        .map_err(|(_, e)| sqlite("close the database")(e))?;
    Ok(checked)
}

/// Opens an existing database read-write (to recover a leftover WAL), never creating one.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("open the database"))
}

fn check_connection(conn: &Connection) -> Result<CheckedDatabase, BackupError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(|e| BackupError::NotTally(format!("cannot read it as SQLite: {e}")))?;
    let report: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| BackupError::NotTally(format!("cannot read it as SQLite: {e}")))?;
    if report != ["ok"] {
        return Err(BackupError::Damaged(report.join("; ")));
    }
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite("read the schema version"))?;
    if !(1..=SCHEMA_VERSION).contains(&schema_version) {
        return Err(BackupError::NotTally(format!(
            "schema version {schema_version}, this Tally knows 1 to {SCHEMA_VERSION}"
        )));
    }
    for table in TALLY_TABLES {
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(sqlite("read the schema"))?;
        if found != 1 {
            return Err(BackupError::NotTally(format!("no table {table}")));
        }
    }
    Ok(CheckedDatabase { schema_version })
}
