//! Loading a whole store, read out by another backend in the neutral form of
//! [`tally_store::copy`], into an empty PostgreSQL database (`tally migrate`).
//!
//! Everything is written in one transaction: a copy that fails half-way leaves the database as
//! it was. Each table is loaded with one binary `COPY … FROM STDIN`, fed from the rows as they
//! arrive through a bounded channel, so that memory stays flat however large the source is.
//! Values are written by the target column's type, read from the catalog (an integer 0/1 into a
//! BOOLEAN column becomes false/true); a value of another kind is an error naming the table and
//! the column.

use std::collections::HashMap;
use std::pin::Pin;

use deadpool_postgres::{Object, Pool};
use tally_store::StoreError;
use tally_store::copy::{RowCount, TABLES, TableSpec, Transfer, Value};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::{connection, migrate};

/// Tables that hold data as soon as a server has run on a database: a target with a row in any
/// of them is not empty.
const DATA_TABLES: &[&str] = &[
    "licenses",
    "devices",
    "reports",
    "settings",
    "handshakes",
    "audit_log",
];

/// Why a copy into PostgreSQL failed. Nothing was committed, except by a failure after the
/// commit (reading the counts back).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Connecting, migrating or another store operation failed; `source` is the driver's error.
    #[error("{what}")]
    Backend {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A store operation failed with no underlying error (e.g. a schema version too new).
    #[error(transparent)]
    Store(StoreError),
    /// PostgreSQL failed while doing `what`.
    #[error("cannot {what}")]
    Postgres {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The target holds Tally data already: a copy would mix two servers' data.
    #[error(
        "the target database already holds Tally data (rows in {}): copy into a new, empty \
         database or schema",
        tables.join(", ")
    )]
    NotEmpty { tables: Vec<&'static str> },
    /// Rows of a table that is not one of [`TABLES`].
    #[error("table {table}: not one of the tables the copy knows")]
    UnknownTable { table: &'static str },
    /// The target's schema lacks a table of the copy.
    #[error("the target database has no table {table}")]
    MissingTable { table: &'static str },
    /// The target's schema lacks a column of the copy.
    #[error("table {table}: the target database has no column {column}")]
    MissingColumn {
        table: &'static str,
        column: &'static str,
    },
    /// The target column has a type the copy does not write.
    #[error("table {table}, column {column}: the copy does not write PostgreSQL type {type_name}")]
    UnsupportedType {
        table: &'static str,
        column: &'static str,
        type_name: String,
    },
    /// A value of the wrong kind for its column.
    #[error("table {table}, column {column}: {found} for a column of {expected}")]
    WrongKind {
        table: &'static str,
        column: &'static str,
        expected: &'static str,
        found: String,
    },
    /// A row with another number of values than the table has columns.
    #[error("table {table}: a row of {found} values for {expected} columns")]
    RowWidth {
        table: &'static str,
        expected: usize,
        found: usize,
    },
    /// Rows of a table came after the rows of the next one.
    #[error("table {table}: rows arrived after the table was loaded")]
    OutOfOrder { table: &'static str },
    /// The stream of rows ended without the source's end: the export failed.
    #[error("the source stopped before the end of the copy; nothing was committed")]
    SourceEnded,
    /// Fewer or more rows were written than the source sent.
    #[error("table {table}: {sent} rows sent but {written} written; nothing was committed")]
    CountMismatch {
        table: &'static str,
        sent: u64,
        written: u64,
    },
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Backend {
                what,
                cause: Some(source),
            } => {
                // The pool's error repeats the driver's in its own message: keep the driver's.
                let source: Box<dyn std::error::Error + Send + Sync> =
                    match source.downcast::<deadpool_postgres::PoolError>() {
                        Ok(pooled) => match *pooled {
                            deadpool_postgres::PoolError::Backend(e) => Box::new(e),
                            other => Box::new(other),
                        },
                        Err(source) => source,
                    };
                ImportError::Backend { what, source }
            }
            other => ImportError::Store(other),
        }
    }
}

fn pg(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> ImportError {
    let what = what.into();
    move |source| ImportError::Postgres { what, source }
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A connection to the target database, migrated to the current schema and found empty.
pub struct Importer {
    client: Object,
    // The connection goes back to the pool when dropped; the pool lives as long as it.
    _pool: Pool,
}

impl Importer {
    /// Connects to `url` (`postgres://user@host:port/database`, no TLS), creates or upgrades
    /// Tally's tables and checks that they hold no data.
    pub async fn connect(url: &str) -> Result<Self, ImportError> {
        let pool = connection::pool(connection::parse_url(url)?)?;
        let mut client = connection::client(&pool).await?;
        migrate::migrate(&mut client).await?;
        refuse_data(&**client).await?;
        Ok(Self {
            client,
            _pool: pool,
        })
    }

    /// Loads the rows arriving on `incoming` (see [`Transfer`]) in one transaction, committed
    /// only after the source's `Done` and when every table got as many rows as the source sent;
    /// moves the identity sequences past the copied ids. Returns the rows each table of
    /// [`TABLES`] holds after the commit, counted by PostgreSQL.
    pub async fn import(
        mut self,
        mut incoming: mpsc::Receiver<Transfer>,
    ) -> Result<Vec<RowCount>, ImportError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(pg("begin the import transaction"))?;
        // Checked again inside the transaction: a server started on the target meanwhile.
        refuse_data(&*tx).await?;
        let mut targets = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            targets.push(Target::read(&tx, table).await?);
        }
        let mut loading: Option<Loading> = None;
        let mut written: HashMap<&'static str, u64> = HashMap::new();
        let sent = loop {
            match incoming.recv().await {
                None => return Err(ImportError::SourceEnded),
                Some(Transfer::Done(counts)) => break counts,
                Some(Transfer::Rows(table, rows)) => {
                    if loading.as_ref().is_none_or(|l| l.target.spec != table) {
                        if let Some(done) = loading.take() {
                            let (name, rows) = done.finish().await?;
                            written.insert(name, rows);
                        }
                        if written.contains_key(table.name) {
                            return Err(ImportError::OutOfOrder { table: table.name });
                        }
                        let Some(target) = targets.iter().find(|t| t.spec == table) else {
                            return Err(ImportError::UnknownTable { table: table.name });
                        };
                        loading = Some(Loading::start(&tx, target).await?);
                    }
                    if let Some(l) = loading.as_mut() {
                        l.write(rows).await?;
                    }
                }
            }
        };
        if let Some(done) = loading.take() {
            let (name, rows) = done.finish().await?;
            written.insert(name, rows);
        }
        for source in &sent {
            let rows = written.remove(source.table).unwrap_or(0);
            if rows != source.rows {
                return Err(ImportError::CountMismatch {
                    table: source.table,
                    sent: source.rows,
                    written: rows,
                });
            }
        }
        // Rows of a table the source's count left out.
        if let Some((table, rows)) = written.into_iter().find(|(_, rows)| *rows > 0) {
            return Err(ImportError::CountMismatch {
                table,
                sent: 0,
                written: rows,
            });
        }
        for target in &targets {
            target.reset_identities(&tx).await?;
        }
        tx.commit().await.map_err(pg("commit the copy"))?;
        tracing::info!(tables = TABLES.len(), "copy committed");

        let mut held = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let rows: i64 = self
                .client
                .query_one(&format!("SELECT COUNT(*) FROM {}", quoted(table.name)), &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(pg(format!(
                    "count the rows of {} (the copy was committed)",
                    table.name
                )))?;
            held.push(RowCount {
                table: table.name,
                rows: u64::try_from(rows).unwrap_or(0),
            });
        }
        Ok(held)
    }
}

/// Fails with [`ImportError::NotEmpty`] when a table of [`DATA_TABLES`] has a row.
async fn refuse_data(c: &impl tokio_postgres::GenericClient) -> Result<(), ImportError> {
    let mut holding = Vec::new();
    for table in DATA_TABLES {
        let any: bool = c
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", quoted(table)),
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(pg(format!("look for rows in {table}")))?;
        if any {
            holding.push(*table);
        }
    }
    if holding.is_empty() {
        Ok(())
    } else {
        Err(ImportError::NotEmpty { tables: holding })
    }
}

/// The kinds of column the copy writes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    BigInt,
    Boolean,
    Text,
}

impl Kind {
    fn of(ty: &Type) -> Option<Self> {
        match *ty {
            Type::INT8 => Some(Kind::BigInt),
            Type::BOOL => Some(Kind::Boolean),
            Type::TEXT | Type::VARCHAR => Some(Kind::Text),
            _ => None,
        }
    }

    fn described(self) -> &'static str {
        match self {
            Kind::BigInt => "integers",
            Kind::Boolean => "booleans (an integer 0 or 1)",
            Kind::Text => "text",
        }
    }

    /// `value` as a parameter of a column of this kind; `None` when it is of another kind.
    fn cell(self, value: &Value) -> Option<&(dyn ToSql + Sync)> {
        Some(match (self, value) {
            (Kind::BigInt, Value::Null) => &None::<i64>,
            (Kind::Boolean, Value::Null) => &None::<bool>,
            (Kind::Text, Value::Null) => &None::<&str>,
            (Kind::BigInt, Value::Integer(n)) => n,
            (Kind::Boolean, Value::Integer(0)) => &false,
            (Kind::Boolean, Value::Integer(1)) => &true,
            (Kind::Text, Value::Text(s)) => s,
            _ => return None,
        })
    }
}

fn kind_of_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(n) => format!("the integer {n}"),
        Value::Text(_) => "text".into(),
    }
}

/// A table of the target with the types of the copied columns, from the catalog.
struct Target {
    spec: &'static TableSpec,
    types: Vec<Type>,
    kinds: Vec<Kind>,
    /// Copied columns that are identity columns: their sequences move past the copied values.
    identities: Vec<&'static str>,
}

impl Target {
    async fn read(
        tx: &tokio_postgres::Transaction<'_>,
        spec: &'static TableSpec,
    ) -> Result<Self, ImportError> {
        let rows = tx
            .query(
                "SELECT a.attname::text, a.atttypid, a.attidentity <> ''
                 FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&spec.name],
            )
            .await
            .map_err(pg(format!("read the columns of {}", spec.name)))?;
        if rows.is_empty() {
            return Err(ImportError::MissingTable { table: spec.name });
        }
        let mut catalog = HashMap::new();
        for row in &rows {
            let name: String = row.try_get(0).map_err(pg("read the catalog"))?;
            let oid: u32 = row.try_get(1).map_err(pg("read the catalog"))?;
            let identity: bool = row.try_get(2).map_err(pg("read the catalog"))?;
            catalog.insert(name, (oid, identity));
        }
        let mut target = Target {
            spec,
            types: Vec::with_capacity(spec.columns.len()),
            kinds: Vec::with_capacity(spec.columns.len()),
            identities: Vec::new(),
        };
        for &column in spec.columns {
            let Some(&(oid, identity)) = catalog.get(column) else {
                return Err(ImportError::MissingColumn {
                    table: spec.name,
                    column,
                });
            };
            let ty = Type::from_oid(oid);
            let Some((ty, kind)) = ty.and_then(|t| Kind::of(&t).map(|k| (t, k))) else {
                return Err(ImportError::UnsupportedType {
                    table: spec.name,
                    column,
                    type_name: Type::from_oid(oid)
                        .map_or_else(|| format!("oid {oid}"), |t| t.name().to_owned()),
                });
            };
            target.types.push(ty);
            target.kinds.push(kind);
            if identity {
                target.identities.push(column);
            }
        }
        Ok(target)
    }

    /// Sets each identity sequence so that the next generated id follows the largest copied.
    async fn reset_identities(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), ImportError> {
        for column in &self.identities {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), \
                 COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)",
                c = quoted(column),
                t = quoted(self.spec.name),
            );
            tx.query_one(&sql, &[&self.spec.name, column])
                .await
                .map_err(pg(format!(
                    "move the sequence of {}.{column}",
                    self.spec.name
                )))?;
        }
        Ok(())
    }
}

/// One table's `COPY … FROM STDIN (FORMAT binary)` in progress.
struct Loading<'t> {
    target: &'t Target,
    writer: Pin<Box<BinaryCopyInWriter>>,
}

impl<'t> Loading<'t> {
    async fn start(
        tx: &tokio_postgres::Transaction<'_>,
        target: &'t Target,
    ) -> Result<Self, ImportError> {
        let columns: Vec<String> = target.spec.columns.iter().map(|c| quoted(c)).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            quoted(target.spec.name),
            columns.join(", ")
        );
        let sink = tx
            .copy_in(&sql)
            .await
            .map_err(pg(format!("start loading {}", target.spec.name)))?;
        Ok(Self {
            target,
            writer: Box::pin(BinaryCopyInWriter::new(sink, &target.types)),
        })
    }

    async fn write(&mut self, rows: Vec<Vec<Value>>) -> Result<(), ImportError> {
        let spec = self.target.spec;
        for row in &rows {
            if row.len() != spec.columns.len() {
                return Err(ImportError::RowWidth {
                    table: spec.name,
                    expected: spec.columns.len(),
                    found: row.len(),
                });
            }
            let mut cells = Vec::with_capacity(row.len());
            for ((value, kind), column) in row.iter().zip(&self.target.kinds).zip(spec.columns) {
                let cell = kind.cell(value).ok_or_else(|| ImportError::WrongKind {
                    table: spec.name,
                    column,
                    expected: kind.described(),
                    found: kind_of_value(value),
                })?;
                cells.push(cell);
            }
            self.writer
                .as_mut()
                .write(&cells)
                .await
                .map_err(pg(format!("load {}", spec.name)))?;
        }
        Ok(())
    }

    /// Ends the table's COPY; returns the table and the rows PostgreSQL took.
    async fn finish(mut self) -> Result<(&'static str, u64), ImportError> {
        let name = self.target.spec.name;
        let rows = self
            .writer
            .as_mut()
            .finish()
            .await
            .map_err(pg(format!("finish loading {name}")))?;
        tracing::debug!(table = name, rows, "loaded table");
        Ok((name, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_by_the_kind_of_their_column() {
        assert!(Kind::BigInt.cell(&Value::Integer(7)).is_some());
        assert!(Kind::BigInt.cell(&Value::Null).is_some());
        assert!(Kind::Text.cell(&Value::Text("x".into())).is_some());
        assert!(Kind::Text.cell(&Value::Null).is_some());
        assert!(Kind::Boolean.cell(&Value::Integer(0)).is_some());
        assert!(Kind::Boolean.cell(&Value::Integer(1)).is_some());
        // Another kind, or an integer that is no flag, is refused.
        assert!(Kind::Boolean.cell(&Value::Integer(2)).is_none());
        assert!(Kind::BigInt.cell(&Value::Text("7".into())).is_none());
        assert!(Kind::Text.cell(&Value::Integer(7)).is_none());
        assert!(Kind::of(&Type::INT4).is_none());
    }

    #[test]
    fn a_wrong_value_names_its_table_and_column() {
        let e = ImportError::WrongKind {
            table: "handshakes",
            column: "enabled",
            expected: Kind::Boolean.described(),
            found: kind_of_value(&Value::Integer(2)),
        };
        assert_eq!(
            e.to_string(),
            "table handshakes, column enabled: the integer 2 for a column of booleans (an integer 0 or 1)"
        );
    }
}
