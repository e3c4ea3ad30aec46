//! Connections: one writer thread fed through a channel, and a small pool of read connections.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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
    writer: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    cache: crate::cache::ReadCache,
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
        return Err(StoreError::Backend(format!(
            "cannot switch the database to WAL (got {mode})"
        )));
    }
    configure(&conn)?;
    migrate::migrate(&mut conn)?;
    // The writer checkpoints when it is idle (see `run_writer`); SQLite's automatic checkpoint,
    // which runs inside a commit and holds up every write queued behind it, is only a backstop.
    conn.pragma_update(None, "wal_autocheckpoint", 16_000)
        .map_err(backend("set the checkpoint backstop"))?;

    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("tally-sqlite-writer".into())
        .spawn(move || run_writer(&mut conn, &rx))
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(SqliteStore {
        inner: Arc::new(Inner {
            path: path.to_owned(),
            writer: tx,
            readers: Mutex::new(Vec::new()),
            cache: crate::cache::ReadCache::default(),
        }),
    })
}

/// A checkpoint is made when the writer finds no work and the last one is older than this.
const CHECKPOINT_WHEN_IDLE: Duration = Duration::from_millis(200);
/// A checkpoint is made after this long even if the writer is never idle.
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(2);

/// Batches start at most this often. Every commit has a fixed cost on the server's core (the
/// `fsync`, the log's frame writes, file locks, two context switches); when writes arrive one by
/// one between longer pieces of work (an authorization's public-key operations), committing each
/// alone spends that cost per request. Waiting out the rest of this interval lets a handful join
/// the batch: authorizations +10–15 % on one core, for at most this much added latency.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_micros(500);

/// The writer thread: jobs run one after another, waiting ones grouped into one transaction.
/// Between batches, when nothing waits, it folds the write-ahead log into the database (the
/// checkpoint then completes, so the log starts over instead of growing). It ends when every
/// store handle is dropped.
fn run_writer(conn: &mut Connection, rx: &mpsc::Receiver<Job>) {
    let mut pending = VecDeque::new();
    let mut last_checkpoint = Instant::now();
    let mut written = false;
    let mut last_batch: Option<Instant> = None;
    loop {
        if pending.is_empty() {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    if written && last_checkpoint.elapsed() >= CHECKPOINT_WHEN_IDLE {
                        checkpoint(conn);
                        last_checkpoint = Instant::now();
                        written = false;
                    }
                    match rx.recv() {
                        Ok(job) => pending.push_back(job),
                        Err(_) => return,
                    }
                }
            }
        }
        if written && last_checkpoint.elapsed() >= CHECKPOINT_AT_LATEST {
            checkpoint(conn);
            last_checkpoint = Instant::now();
        }
        // At high rates, commits are spaced so that each carries several writes; at low rates
        // the last batch is long past and nothing waits.
        if let Some(since) = last_batch.map(|at| at.elapsed())
            && since < MIN_COMMIT_INTERVAL
        {
            std::thread::sleep(MIN_COMMIT_INTERVAL - since);
        }
        last_batch = Some(Instant::now());
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        run_batch(conn, &mut pending);
        written = true;
    }
}

fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpoint failed; retrying later");
    }
}

/// Group commit: jobs from the front of `pending` run in one transaction (each inside its own
/// savepoint, so a failing job undoes only its own changes), then one commit makes them all
/// durable, and only then are the callers answered. If SQLite abandons the transaction itself
/// (disk full, I/O error), the jobs run so far are answered with the failure and the rest stay in
/// `pending` for a fresh transaction, so no write is ever acknowledged without being committed.
fn run_batch(conn: &mut Connection, pending: &mut VecDeque<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // The jobs are dropped unrun; their callers hear that the write was not carried out.
        tracing::error!(error = %e, jobs = pending.len(), "cannot begin a write transaction");
        pending.clear();
        return;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(pending.len());
    let mut lost = None;
    while let Some(job) = pending.pop_front() {
        // A panicking job (a bug) must not take the writer down with it: its savepoint has rolled
        // back during the unwind, and its caller sees its reply channel closed.
        match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok(reply) => replies.push(reply),
            Err(_) => tracing::error!("a write job panicked; its changes were undone"),
        }
        if conn.is_autocommit() {
            lost = Some("the database abandoned the write transaction (see the server log)");
            break;
        }
    }
    let committed = match lost {
        Some(why) => Err(why.to_owned()),
        None => conn.execute_batch("COMMIT").map_err(|e| {
            tracing::error!(error = %e, "commit failed");
            format!("commit failed: {e}")
        }),
    };
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for reply in replies {
        reply(committed.clone());
    }
}

impl SqliteStore {
    pub(crate) fn cache(&self) -> &crate::cache::ReadCache {
        &self.inner.cache
    }

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
        self.inner
            .writer
            .send(job)
            .map_err(|_| StoreError::Backend("the writer thread has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Backend("the write was not carried out (see the server log)".into())
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
                Err(e) => Err(StoreError::Backend(format!("begin read: {e}"))),
            };
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
