//! Connections: the writer thread (`writer.rs`), fed through a channel, and a small pool of read
//! connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tally_store::{StoreError, StoreResult};

use crate::writer::{self, CommitSpacing, Job, Work, WriterHandle};
use crate::{backend, migrate};

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// A handle to the database; clones share the writer and the read pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: WriterHandle,
    readers: Mutex<Vec<Connection>>,
    cache: tally_store::cache::ReadCache,
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend("set busy timeout"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend("enable foreign keys"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend("set synchronous"))?;
    // 32 MiB of page cache (the default is 2 MiB): the hot pages of the device and report
    // indexes stay in memory instead of being read again through the kernel.
    conn.pragma_update(None, "cache_size", -32_768)
        .map_err(backend("set cache size"))?;
    Ok(())
}

pub(crate) fn open(path: &Path) -> StoreResult<SqliteStore> {
    let mut conn = Connection::open(path).map_err(backend("open database"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(backend("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::failure(format!(
            "cannot switch the database to WAL (got {mode})"
        )));
    }
    configure(&conn)?;
    migrate::migrate(&mut conn)?;
    // The writer checkpoints when it is idle (see `writer.rs`); SQLite's automatic checkpoint,
    // which runs inside a commit and holds up every write queued behind it, is only a backstop.
    conn.pragma_update(None, "wal_autocheckpoint", 16_000)
        .map_err(backend("set the checkpoint backstop"))?;

    let writer = writer::start(conn)
        .map_err(|e| StoreError::failure(format!("cannot start the writer thread: {e}")))?;
    Ok(SqliteStore {
        inner: Arc::new(Inner {
            path: path.to_owned(),
            writer,
            readers: Mutex::new(Vec::new()),
            cache: tally_store::cache::ReadCache::default(),
        }),
    })
}

impl SqliteStore {
    pub(crate) fn cache(&self) -> &tally_store::cache::ReadCache {
        &self.inner.cache
    }

    /// Runs `f` on the writer thread and waits until its result is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write_spaced(CommitSpacing::NONE, f).await
    }

    /// [`Self::write`] with the given commit spacing.
    pub(crate) async fn write_spaced<T, F>(&self, spacing: CommitSpacing, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |committed: Result<(), String>| {
                let _ = reply.send(committed.map_err(StoreError::failure).and(result));
            })
        });
        self.inner
            .writer
            .send(Job { work, spacing })
            .map_err(|()| StoreError::failure("the writer thread has stopped"))?;
        answer.await.map_err(|_| {
            StoreError::failure("the write was not carried out (see the server log)")
        })?
    }

    /// Runs `f` on a read connection in the blocking pool, inside one read transaction so that
    /// reads made of several queries see a single snapshot.
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
            let result = match conn.unchecked_transaction() {
                // Dropping the transaction ends it (a rollback: nothing was written).
                Ok(snapshot) => f(&snapshot),
                Err(e) => Err(StoreError::failure(format!("begin read: {e}"))),
            };
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::failure(format!("read task failed: {e}")))?
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
