//! The writer thread: every write runs here, one after another; writes that wait together share
//! one transaction and one commit (group commit), and their callers are answered only after it.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// A write: runs inside the batch's transaction and returns what to do once the batch's fate
/// (committed or not) is known.
pub(crate) type Work = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;

/// Answers the caller after the commit: an acknowledged write is a durable write.
pub(crate) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A write on its way to the writer, with how long its commit may wait for others.
pub(crate) struct Job {
    pub work: Work,
    pub spacing: CommitSpacing,
}

/// Most writes committed together.
const MAX_BATCH: usize = 512;

/// A checkpoint is made when the writer finds no work and the last one is older than this.
const CHECKPOINT_WHEN_IDLE: Duration = Duration::from_millis(200);
/// A checkpoint is made after this long even if the writer is never idle.
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(2);

/// How long after the previous batch a write's batch may start at the earliest. Every commit has
/// a fixed cost on the server's core (the `fsync`, the log's frame writes, file locks, two
/// context switches); when writes arrive one by one between longer pieces of work, committing
/// each alone spends that cost per request, and waiting out the rest of the spacing lets others
/// join the batch. At low rates the previous batch is long past and nothing waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CommitSpacing(Duration);

impl CommitSpacing {
    /// Most writes (usage reports above all) do not wait: the next batch starts as soon as the
    /// previous commit is done, with everything that queued up while it waited for the disk.
    /// A 500 µs spacing only held the waiting connections (session reports −12–28 % at 32
    /// connections on one core).
    pub const NONE: Self = Self(Duration::ZERO);
    /// Admissions: each follows ≈ 170 µs of public-key work, so they arrive one by one; a 2 ms
    /// spacing lets about a dozen share a commit at the peak (authorize / crypto-only 78–81 % →
    /// 84–86 % on one core, measured against 500 µs). The price: a single client sending
    /// authorizations back to back, each waiting for the last, gets at most one every 2 ms.
    pub const ADMISSION: Self = Self(Duration::from_millis(2));
}

/// Lets a write with a short spacing cut short the writer's wait for a longer one. The writer
/// sleeps through a spacing without being woken by every arriving write (a context switch per
/// write); only a write that should not wait that long wakes it.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    wake: Condvar,
}

#[derive(Default)]
struct GateState {
    /// The spacing the writer is waiting out, if it is waiting.
    waiting_for: Option<CommitSpacing>,
    /// A write with a shorter spacing arrived while it waited.
    hurried: bool,
}

/// The sending end: what store handles hold.
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    gate: Arc<Gate>,
}

impl WriterHandle {
    /// Queues `job`; `Err` when the writer thread has stopped.
    pub fn send(&self, job: Job) -> Result<(), ()> {
        let spacing = job.spacing;
        self.jobs.send(job).map_err(|_| ())?;
        let mut gate = self.gate.state.lock().unwrap_or_else(|p| p.into_inner());
        if gate.waiting_for.is_some_and(|w| spacing < w) {
            gate.hurried = true;
            self.gate.wake.notify_one();
        }
        Ok(())
    }
}

/// Starts the writer thread on `conn`.
pub(crate) fn start(mut conn: Connection) -> std::io::Result<WriterHandle> {
    let (jobs, rx) = mpsc::channel::<Job>();
    let gate = Arc::new(Gate::default());
    let writer = Writer {
        rx,
        gate: gate.clone(),
        pending: VecDeque::new(),
    };
    std::thread::Builder::new()
        .name("tally-sqlite-writer".into())
        .spawn(move || writer.run(&mut conn))?;
    Ok(WriterHandle { jobs, gate })
}

struct Writer {
    rx: mpsc::Receiver<Job>,
    gate: Arc<Gate>,
    pending: VecDeque<Job>,
}

impl Writer {
    /// Jobs run one after another, waiting ones grouped into one transaction. Between batches,
    /// when nothing waits, the writer folds the write-ahead log into the database (the checkpoint
    /// then completes, so the log starts over instead of growing). It ends when every store
    /// handle is dropped.
    fn run(mut self, conn: &mut Connection) {
        let mut last_checkpoint = Instant::now();
        let mut written = false;
        let mut last_batch: Option<Instant> = None;
        loop {
            if self.pending.is_empty() {
                match self.rx.try_recv() {
                    Ok(job) => self.pending.push_back(job),
                    Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => {
                        if written && last_checkpoint.elapsed() >= CHECKPOINT_WHEN_IDLE {
                            checkpoint(conn);
                            last_checkpoint = Instant::now();
                            written = false;
                        }
                        match self.rx.recv() {
                            Ok(job) => self.pending.push_back(job),
                            Err(_) => return,
                        }
                    }
                }
            }
            if written && last_checkpoint.elapsed() >= CHECKPOINT_AT_LATEST {
                checkpoint(conn);
                last_checkpoint = Instant::now();
            }
            if let Some(previous) = last_batch {
                self.wait_for_spacing(previous);
            }
            last_batch = Some(Instant::now());
            self.take_waiting();
            run_batch(conn, &mut self.pending);
            written = true;
        }
    }

    /// Waits until the shortest spacing among the pending writes has passed since `previous`;
    /// a write with a shorter spacing arriving meanwhile shortens the wait, and a full batch
    /// does not wait.
    fn wait_for_spacing(&mut self, previous: Instant) {
        loop {
            self.take_waiting();
            if self.pending.len() >= MAX_BATCH {
                return;
            }
            let Some(spacing) = self.pending.iter().map(|job| job.spacing).min() else {
                return;
            };
            let Some(left) = spacing.0.checked_sub(previous.elapsed()) else {
                return;
            };
            if left.is_zero() {
                return;
            }
            let gate = Arc::clone(&self.gate);
            let mut state = gate.state.lock().unwrap_or_else(|p| p.into_inner());
            state.waiting_for = Some(spacing);
            state.hurried = false;
            // Writes sent before `waiting_for` was set did not hurry the writer; they are in the
            // channel by now (a sender queues its write before it takes this lock).
            self.take_waiting();
            if self.pending.iter().any(|job| job.spacing < spacing) {
                state.waiting_for = None;
                continue;
            }
            let (mut state, _) = gate
                .wake
                .wait_timeout_while(state, left, |s| !s.hurried)
                .unwrap_or_else(|p| p.into_inner());
            state.waiting_for = None;
            if !state.hurried {
                return;
            }
        }
    }

    /// Moves the writes that arrived into `pending`, up to a batch.
    fn take_waiting(&mut self) {
        while self.pending.len() < MAX_BATCH {
            match self.rx.try_recv() {
                Ok(job) => self.pending.push_back(job),
                Err(_) => break,
            }
        }
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
        match std::panic::catch_unwind(AssertUnwindSafe(|| (job.work)(conn))) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that inserts `value` and reports the batch's fate on `done`.
    fn insert(value: i64, spacing: CommitSpacing, done: &mpsc::Sender<(i64, Instant)>) -> Job {
        let done = done.clone();
        Job {
            work: Box::new(move |conn| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [value])
                    .unwrap();
                Box::new(move |committed| {
                    committed.unwrap();
                    done.send((value, Instant::now())).unwrap();
                })
            }),
            spacing,
        }
    }

    fn writer() -> WriterHandle {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        start(conn).unwrap()
    }

    #[test]
    fn a_write_waits_out_its_spacing_after_the_previous_batch() {
        let handle = writer();
        let (done, answers) = mpsc::channel();
        let sent = Instant::now();
        handle.send(insert(1, CommitSpacing::NONE, &done)).unwrap();
        assert_eq!(answers.recv().unwrap().0, 1);
        let spacing = CommitSpacing(Duration::from_millis(300));
        handle.send(insert(2, spacing, &done)).unwrap();
        let (value, at) = answers.recv().unwrap();
        assert_eq!(value, 2);
        assert!(at - sent >= spacing.0, "committed after {:?}", at - sent);
    }

    #[test]
    fn a_write_with_a_shorter_spacing_cuts_the_wait_short() {
        let handle = writer();
        let (done, answers) = mpsc::channel();
        handle.send(insert(1, CommitSpacing::NONE, &done)).unwrap();
        answers.recv().unwrap();
        // Far longer than any scheduling delay: only the hurried write can end the wait early.
        let long = CommitSpacing(Duration::from_secs(30));
        let sent = Instant::now();
        handle.send(insert(2, long, &done)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        handle.send(insert(3, CommitSpacing::NONE, &done)).unwrap();
        let mut got: Vec<i64> = (0..2).map(|_| answers.recv().unwrap().0).collect();
        got.sort_unstable();
        assert_eq!(got, vec![2, 3]);
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "the short write waited {:?}",
            sent.elapsed()
        );
    }
}
