//! Connections: one writer thread fed through a channel, and a small pool of read connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};
use tally_store::{StoreError, StoreResult};

use crate::{backend, migrate};

/// A write: runs inside the batch's transaction and returns what to do once the batch's fate
/// (committed or not) is known.
type Job = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
/// Answers the caller after the commit: an acknowledged write is a durable write.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Most writes committed together (group commit).
const MAX_BATCH: usize = 512;

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// A handle to the database; clones share the writer and the read pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("set busy timeout"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend("enable foreign keys"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend("set synchronous"))?;
    Ok(())
}

pub(crate) fn open(path: &Path) -> StoreResult<SqliteStore> {
    let mut conn = Connection::open(path).map_err(backend("open database"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(backend("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot switch the database to WAL (got {mode})"
        )));
    }
    configure(&conn)?;
    migrate::migrate(&mut conn)?;

    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("tally-sqlite-writer".into())
        .spawn(move || {
            // Jobs run one after another; the thread ends when every store handle is dropped.
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(&mut conn, jobs);
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(SqliteStore {
        inner: Arc::new(Inner {
            path: path.to_owned(),
            writer: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
        }),
    })
}

/// Group commit: every job waiting runs in one transaction (each inside its own savepoint, so a
/// failing job undoes only its own changes), then one commit makes them all durable, and only
/// then are the callers answered.
fn run_batch(conn: &mut Connection, jobs: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = format!("cannot begin a write: {e}");
        for job in jobs {
            // The job is not run; its caller hears why.
            drop(job);
            tracing::error!(error = %e, "write refused");
        }
        return;
    }
    let replies: Vec<Reply> = jobs.into_iter().map(|job| job(conn)).collect();
    let committed = conn
        .execute_batch("COMMIT")
        .map_err(|e| format!("commit failed: {e}"));
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(committed.clone());
    }
}

impl SqliteStore {
    /// Runs `f` on the writer thread and waits until its result is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |committed: Result<(), String>| {
                let _ = reply.send(committed.map_err(StoreError::Backend).and(result));
            })
        });
        {
            let sender = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            sender
                .send(job)
                .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        }
        answer.await.map_err(|_| {
            StoreError::Backend("the write could not begin (see the server log)".into())
        })?
    }

    /// Runs `f` on a read connection in the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
            {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend("open read connection"))?;
    configure(&conn)?;
    Ok(conn)
}
