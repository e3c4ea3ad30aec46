//! Reading a whole database out in the neutral form of [`tally_store::copy`], for `tally migrate`.
//!
//! The export reads through its own read-only connection, inside one read transaction: in WAL
//! mode that pins one snapshot, so even if a server kept writing, the copy would hold exactly
//! what was committed when it began (every table from the same moment). Rows are handed on in
//! chunks, so that memory stays flat however many devices and reports the database holds.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tally_store::copy::{RowCount, TABLES, TRANSIENT_TABLES, TableSpec, Value};

use crate::SCHEMA_VERSION;

/// Rows handed on at a time.
pub const EXPORT_CHUNK_ROWS: usize = 1_000;

/// Tables of the SQLite schema that are not copied: counters derived from other tables, rebuilt
/// by counting when missing (`places.rs`) and unknown to other stores. (The transient tables of
/// [`TRANSIENT_TABLES`] are not copied either.)
const DERIVED_TABLES: &[&str] = &["item_places"];

/// Whether `table` is left out of the copy on purpose.
fn not_copied(table: &str) -> bool {
    DERIVED_TABLES.contains(&table) || TRANSIENT_TABLES.contains(&table)
}

/// Why a database could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file does not exist.
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// SQLite failed while doing `context`.
    #[error("cannot {context}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The file is an SQLite database, but not one Tally wrote.
    #[error("not a Tally database: {0}")]
    NotTally(String),
    /// An older Tally wrote the database; the server upgrades it when it starts.
    #[error(
        "the database has schema version {found}, older than this Tally's {current}: start the \
         server (this version) once on it so that it upgrades the database, stop it, then copy it"
    )]
    Older { found: i64, current: i64 },
    /// A newer Tally wrote the database.
    #[error(
        "the database has schema version {found}, newer than this Tally knows ({current}): \
         upgrade Tally"
    )]
    Newer { found: i64, current: i64 },
    /// A table's columns are not the ones the copy knows: the copy would lose or invent data.
    #[error("table {table}: {problem}")]
    Schema { table: String, problem: String },
    /// A value Tally never writes (a real number, a blob, text that is not UTF-8).
    #[error("table {table}, column {column}: {problem}")]
    UnsupportedValue {
        table: &'static str,
        column: &'static str,
        problem: &'static str,
    },
    /// The receiving side stopped taking rows (it failed; its own error says why).
    #[error("the receiving side stopped before the export ended")]
    Stopped,
}

fn sqlite(context: &'static str) -> impl Fn(rusqlite::Error) -> ExportError {
    move |source| ExportError::Sqlite { context, source }
}

/// Reads every table of [`TABLES`] from the database at `path`, in a stable order (rowid, or the
/// primary key of a `WITHOUT ROWID` table), and hands the rows to `sink` in chunks of at most
/// [`EXPORT_CHUNK_ROWS`]; a table without rows gets no call. `sink` returns
/// `ControlFlow::Break(())` to stop the export (which then fails with [`ExportError::Stopped`]).
/// Returns the rows read per table, in `TABLES` order.
///
/// The file is opened read-only and must be a Tally database at [`SCHEMA_VERSION`]. Blocking:
/// run it on a blocking thread.
pub fn export(
    path: &Path,
    mut sink: impl FnMut(&'static TableSpec, Vec<Vec<Value>>) -> ControlFlow<()>,
) -> Result<Vec<RowCount>, ExportError> {
    if !path.is_file() {
        return Err(ExportError::Missing(path.to_owned()));
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("open the database"))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(sqlite("set busy timeout"))?;
    // One read transaction for the whole export: one snapshot, however long it takes. The
    // snapshot begins with the first read, the schema check, so the check holds for every row.
    let snapshot = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(sqlite("begin the read snapshot"))?;
    check_schema(&snapshot)?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = export_table(&snapshot, table, &mut sink)?;
        tracing::debug!(table = table.name, rows, "exported table");
        counts.push(RowCount {
            table: table.name,
            rows,
        });
    }
    // Dropping the transaction ends it; nothing was written.
    drop(snapshot);
    Ok(counts)
}

/// Checks that the database is Tally's at [`SCHEMA_VERSION`] and that its tables and columns are
/// exactly [`TABLES`] plus the derived ones.
fn check_schema(conn: &Connection) -> Result<(), ExportError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| ExportError::NotTally(format!("cannot read it as SQLite: {e}")))?;
    let tables = table_names(conn)
        .map_err(|e| ExportError::NotTally(format!("cannot read it as SQLite: {e}")))?;
    if version == 0 || !tables.iter().any(|t| t == "licenses") {
        return Err(ExportError::NotTally(format!(
            "schema version {version}, no Tally tables"
        )));
    }
    if version < SCHEMA_VERSION {
        return Err(ExportError::Older {
            found: version,
            current: SCHEMA_VERSION,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(ExportError::Newer {
            found: version,
            current: SCHEMA_VERSION,
        });
    }
    for name in &tables {
        if !TABLES.iter().any(|t| t.name == name) && !not_copied(name) {
            return Err(ExportError::Schema {
                table: name.clone(),
                problem: "this Tally does not know how to copy it".into(),
            });
        }
    }
    for table in TABLES {
        let columns = column_names(conn, table.name).map_err(sqlite("read the schema"))?;
        if columns.is_empty() {
            return Err(ExportError::Schema {
                table: table.name.into(),
                problem: "missing".into(),
            });
        }
        let unknown: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|c| !table.columns.contains(c))
            .collect();
        let missing: Vec<&str> = table
            .columns
            .iter()
            .copied()
            .filter(|c| !columns.iter().any(|have| have == c))
            .collect();
        if !unknown.is_empty() || !missing.is_empty() {
            return Err(ExportError::Schema {
                table: table.name.into(),
                problem: format!(
                    "columns not copied: [{}]; columns missing: [{}]",
                    unknown.join(", "),
                    missing.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The tables of the database, without SQLite's own (`sqlite_sequence`, `sqlite_stat1`, …).
fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         ORDER BY name",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

fn column_names(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    stmt.query_map([table], |r| r.get(0))?.collect()
}

/// `ORDER BY` terms giving `table`'s rows a stable order: its rowid, or for a `WITHOUT ROWID`
/// table its primary key (the order it is stored in).
fn stable_order(conn: &Connection, table: &TableSpec) -> Result<String, ExportError> {
    let without_rowid: bool = conn
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [table.name],
            |r| r.get(0),
        )
        .map_err(sqlite("read the schema"))?;
    if !without_rowid {
        return Ok("rowid".into());
    }
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
        .map_err(sqlite("read the schema"))?;
    let key: Vec<String> = stmt
        .query_map([table.name], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(sqlite("read the schema"))?;
    Ok(key.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", "))
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Streams the rows of `table` to `sink`; returns how many there were.
fn export_table(
    conn: &Connection,
    table: &'static TableSpec,
    sink: &mut impl FnMut(&'static TableSpec, Vec<Vec<Value>>) -> ControlFlow<()>,
) -> Result<u64, ExportError> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        table
            .columns
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", "),
        quoted(table.name),
        stable_order(conn, table)?
    );
    let mut stmt = conn.prepare(&sql).map_err(sqlite("read a table"))?;
    let mut rows = stmt.query([]).map_err(sqlite("read a table"))?;
    let mut chunk = Vec::with_capacity(EXPORT_CHUNK_ROWS);
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(sqlite("read a row"))? {
        let mut values = Vec::with_capacity(table.columns.len());
        for (index, column) in table.columns.iter().enumerate() {
            let value = row.get_ref(index).map_err(sqlite("read a value"))?;
            values.push(
                neutral(value).map_err(|problem| ExportError::UnsupportedValue {
                    table: table.name,
                    column,
                    problem,
                })?,
            );
        }
        chunk.push(values);
        count += 1;
        if chunk.len() == EXPORT_CHUNK_ROWS {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK_ROWS));
            if sink(table, full).is_break() {
                return Err(ExportError::Stopped);
            }
        }
    }
    if !chunk.is_empty() && sink(table, chunk).is_break() {
        return Err(ExportError::Stopped);
    }
    Ok(count)
}

fn neutral(value: ValueRef<'_>) -> Result<Value, &'static str> {
    match value {
        ValueRef::Null => Ok(Value::Null),
        ValueRef::Integer(n) => Ok(Value::Integer(n)),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(|s| Value::Text(s.to_owned()))
            .map_err(|_| "text that is not UTF-8"),
        ValueRef::Real(_) => Err("a real number, which Tally never writes"),
        ValueRef::Blob(_) => Err("a blob, which Tally never writes"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A database at the current schema, made by the store itself, with a few rows.
    fn database(dir: &Path) -> PathBuf {
        let path = dir.join("tally.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::migrate::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO settings (key, value) VALUES ('b', '2'), ('a', '1');
             INSERT INTO reports VALUES ('r2', 'd', 'c', 2, 20), ('r1', 'd', 'c', 1, 10);
             INSERT INTO audit_log (at, actor, action, detail) VALUES (5, 'api', 'x', '');
             INSERT INTO organizations VALUES ('o', 'O', 'o-default');
             INSERT INTO handshakes (code, organization, description, created_at)
                 VALUES ('o-default', 'o', NULL, 7);",
        )
        .unwrap();
        path
    }

    /// The rows of each table that has any, in the order the sink got them.
    type Seen = Vec<(String, Vec<Vec<Value>>)>;

    fn collect(path: &Path) -> Result<(Seen, Vec<RowCount>), ExportError> {
        let mut seen: Seen = Vec::new();
        let counts = export(path, |table, rows| {
            match seen.last_mut() {
                Some((name, all)) if name == table.name => all.extend(rows),
                _ => seen.push((table.name.to_owned(), rows)),
            }
            ControlFlow::Continue(())
        })?;
        Ok((seen, counts))
    }

    #[test]
    fn every_table_of_the_schema_is_copied_or_derived() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(database(dir.path())).unwrap();
        let mut expected: Vec<String> = TABLES.iter().map(|t| t.name).map(str::to_owned).collect();
        let mut have = table_names(&conn).unwrap();
        have.retain(|t| !not_copied(t));
        expected.sort();
        assert_eq!(have, expected);
        check_schema(&conn).unwrap();
    }

    #[test]
    fn rows_come_in_a_stable_order_with_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        let (seen, counts) = collect(&path).unwrap();
        let tables: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            tables,
            [
                "settings",
                "organizations",
                "handshakes",
                "reports",
                "audit_log"
            ]
        );
        // settings by rowid (insertion order); reports (WITHOUT ROWID) by primary key.
        assert_eq!(seen[0].1[0][0], Value::Text("b".into()));
        assert_eq!(seen[3].1[0][0], Value::Text("r1".into()));
        let handshake = &seen[2].1[0];
        assert_eq!(handshake[2], Value::Null);
        assert_eq!(handshake[3], Value::Integer(1));
        assert_eq!(counts.len(), TABLES.len());
        assert_eq!(
            counts.iter().find(|c| c.table == "reports").unwrap().rows,
            2
        );
        assert_eq!(counts.iter().map(|c| c.rows).sum::<u64>(), 7);
    }

    #[test]
    fn a_stopped_sink_stops_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        let err = export(&path, |_, _| ControlFlow::Break(())).unwrap_err();
        assert!(matches!(err, ExportError::Stopped), "{err}");
    }

    #[test]
    fn old_new_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
            .unwrap();
        let err = collect(&path).unwrap_err();
        assert!(err.to_string().contains("start the server"), "{err}");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = collect(&path).unwrap_err();
        assert!(err.to_string().contains("upgrade Tally"), "{err}");

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            collect(&other).unwrap_err(),
            ExportError::NotTally(_)
        ));
        assert!(matches!(
            collect(&dir.path().join("none.db")).unwrap_err(),
            ExportError::Missing(_)
        ));
    }

    #[test]
    fn a_value_tally_never_writes_is_refused_by_table_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE reports SET slice = 1.5 WHERE report_id = 'r2'", [])
            .unwrap();
        let err = collect(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table reports, column slice: a real number, which Tally never writes"
        );
    }

    #[test]
    fn the_snapshot_ignores_writes_made_during_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path());
        let writer = Connection::open(&path).unwrap();
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        let mut settings = 0;
        let counts = export(&path, |table, rows| {
            if table.name == "settings" {
                settings += rows.len();
                // Committed while the export reads: not part of it.
                writer
                    .execute_batch(
                        "INSERT INTO settings VALUES ('c', '3');
                         INSERT INTO reports VALUES ('r3', 'd', 'c', 3, 30);",
                    )
                    .unwrap();
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(settings, 2);
        assert_eq!(
            counts.iter().find(|c| c.table == "reports").unwrap().rows,
            2
        );
    }
}
