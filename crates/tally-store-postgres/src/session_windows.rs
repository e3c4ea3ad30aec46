//! Report-session windows shared by the instances on one database, kept with compare-and-set
//! instead of a transaction that locks the row. One task ([`Windows`]) takes the messages waiting
//! together: those of sessions whose window this instance wrote last and still knows are moved in
//! memory and written with one `UPDATE … FROM unnest(…) WHERE` the row still holds the window
//! known (no `BEGIN`, no `SELECT … FOR UPDATE`, no `COMMIT` of their own; the table is unlogged,
//! so nothing waits for a flush). The others go one by one:
//!
//! | what this instance knows of the session | statements |
//! | --- | --- |
//! | the window it wrote last, still current | its part of the batch's one `UPDATE` |
//! | nothing (first message) | a read, then an `INSERT` of the new window |
//! | a stale window (another instance wrote since) | the failed `UPDATE`, a read, an `UPDATE` |
//! | a window that refuses the message | a read: the database's window decides |
//!
//! The rule itself is [`tally_core::replay_window::accept`]; a message is accepted only when the
//! statement that writes its window changed exactly the row it read. (Accepting the messages in
//! the writer's batches instead made each report wait for two commits: slower, see
//! docs/performance.md.)

use std::collections::HashMap;
use std::sync::Mutex;

use tally_core::replay_window::{self, Window};
use tally_proto::UnixSeconds;
use tally_store::{StoreError, StoreResult};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{self, Db, execute, get, row, rows};

/// Sessions whose last window this instance remembers at most; beyond, it forgets them all
/// (each then costs one read more once).
const REMEMBERED: usize = 100_000;

/// Reads and compare-and-sets one message may take before it gives up: each failed one means
/// another instance accepted a message of the same session meanwhile.
const ATTEMPTS: u32 = 32;

/// The windows this instance wrote last, by session.
#[derive(Default)]
pub struct KnownWindows(Mutex<HashMap<Vec<u8>, Window>>);

impl KnownWindows {
    fn get(&self, session: &[u8]) -> Option<Window> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .copied()
    }

    fn set(&self, session: &[u8], window: Window) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= REMEMBERED && !known.contains_key(session) {
            known.clear();
        }
        known.insert(session.to_vec(), window);
    }
}

/// One message of a report session to accept.
pub struct WindowAsk {
    pub session: Vec<u8>,
    pub seq: u64,
    pub expires_at: UnixSeconds,
}

/// The task that accepts the messages waiting together (see the module doc), on a connection of
/// its own pool's.
#[derive(Clone)]
pub struct Windows {
    asks: mpsc::Sender<Waiting>,
}

/// A message to accept and whom to answer.
type Waiting = (WindowAsk, oneshot::Sender<StoreResult<bool>>);

/// Messages taken into one statement at most.
const MAX_BATCH: usize = 256;

impl Windows {
    pub fn start(pool: Pool) -> Self {
        let (asks, mut queue) = mpsc::channel::<Waiting>(4096);
        tokio::spawn(async move {
            let known = KnownWindows::default();
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(ask) => batch.push(ask),
                        Err(_) => break,
                    }
                }
                let asks: Vec<&WindowAsk> = batch.iter().map(|(a, _)| a).collect();
                let outcome = match connection::client(&pool).await {
                    Ok(client) => accept_all(&client, &known, &asks).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(accepted) => {
                        for ((_, reply), accepted) in batch.into_iter().zip(accepted) {
                            let _ = reply.send(Ok(accepted));
                        }
                    }
                    Err(e) => {
                        // The first waiter gets the error with its cause, the others its text.
                        let text = e.to_string();
                        let mut first = Some(e);
                        for (_, reply) in batch {
                            let error = first
                                .take()
                                .unwrap_or_else(|| StoreError::failure(text.clone()));
                            let _ = reply.send(Err(error));
                        }
                    }
                }
            }
        });
        Self { asks }
    }

    /// Accepts message `seq` of `session` once across all instances.
    pub async fn accept(&self, ask: WindowAsk) -> StoreResult<bool> {
        let stopped = || StoreError::failure("the session-window task has stopped");
        let (reply, answer) = oneshot::channel();
        self.asks.send((ask, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Accepts each of `asks` once across all instances, in order; whether each was accepted. The
/// messages of sessions this instance knows are applied to its windows in memory and written
/// with one compare-and-set statement; the others, and those of sessions whose window another
/// instance changed meanwhile, go through [`accept`] one by one.
async fn accept_all(
    c: &impl Db,
    known: &KnownWindows,
    asks: &[&WindowAsk],
) -> StoreResult<Vec<bool>> {
    let mut accepted: Vec<Option<bool>> = asks.iter().map(|_| None).collect();
    // Per session known here: its window before, after, and the messages that moved it.
    let mut moves: HashMap<&[u8], Move> = HashMap::new();
    for (i, ask) in asks.iter().enumerate() {
        let session = ask.session.as_slice();
        let current = match moves.get(session) {
            Some(m) => Some(m.after),
            None => known.get(session),
        };
        let Some(current) = current else { continue };
        // A message the window in memory refuses is left to [`accept`] (the database decides).
        if let Some(next) = replay_window::accept(current, ask.seq) {
            let entry = moves.entry(session).or_insert(Move {
                before: current,
                after: current,
                messages: Vec::new(),
            });
            entry.after = next;
            entry.messages.push(i);
        }
    }
    if !moves.is_empty() {
        let moved: Vec<(&[u8], &Move)> = moves.iter().map(|(s, m)| (*s, m)).collect();
        for session in swap_all(c, &moved).await? {
            if let Some(m) = moves.get(session.as_slice()) {
                known.set(&session, m.after);
                for &i in &m.messages {
                    accepted[i] = Some(true);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(asks.len());
    for (ask, decided) in asks.iter().zip(accepted) {
        out.push(match decided {
            Some(decided) => decided,
            None => accept(c, known, &ask.session, ask.seq, ask.expires_at).await?,
        });
    }
    Ok(out)
}

/// A session's window moved in memory by some of the messages of a batch.
struct Move {
    before: Window,
    after: Window,
    messages: Vec<usize>,
}

/// Moves each session's window from `before` to `after` where the row still holds `before`; the
/// sessions moved.
async fn swap_all(c: &impl Db, moves: &[(&[u8], &Move)]) -> StoreResult<Vec<Vec<u8>>> {
    let sessions: Vec<&[u8]> = moves.iter().map(|(s, _)| *s).collect();
    let column = |f: fn(&Move) -> u64| -> Vec<i64> {
        moves.iter().map(|(_, m)| f(m).cast_signed()).collect()
    };
    let (from_highest, from_seen) = (column(|m| m.before.highest), column(|m| m.before.seen));
    let (to_highest, to_seen) = (column(|m| m.after.highest), column(|m| m.after.seen));
    rows(
        c,
        "write session windows",
        "UPDATE session_windows w SET highest = u.to_highest, seen = u.to_seen
         FROM unnest($1::BYTEA[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
              AS u(session, from_highest, from_seen, to_highest, to_seen)
         WHERE w.session = u.session AND w.highest = u.from_highest AND w.seen = u.from_seen
         RETURNING w.session",
        &[&sessions, &from_highest, &from_seen, &to_highest, &to_seen],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

/// Accepts message `seq` of `session` once across all instances (see the module doc).
async fn accept(
    c: &impl Db,
    known: &KnownWindows,
    session: &[u8],
    seq: u64,
    expires_at: UnixSeconds,
) -> StoreResult<bool> {
    let mut window = known.get(session);
    // Whether `window` was just read from the database (else it is what this instance wrote).
    let mut fresh = false;
    for _ in 0..ATTEMPTS {
        let Some(current) = window else {
            match read(c, session).await? {
                Some(read) => {
                    window = Some(read);
                    fresh = true;
                    continue;
                }
                None => {
                    let Some(next) = replay_window::accept(Window::default(), seq) else {
                        return Ok(false);
                    };
                    if insert(c, session, next, expires_at).await? {
                        known.set(session, next);
                        return Ok(true);
                    }
                    continue;
                }
            }
        };
        let Some(next) = replay_window::accept(current, seq) else {
            if fresh {
                return Ok(false);
            }
            // Refused by what this instance wrote: the database decides (the session may have
            // been swept since and start afresh). Only a replayed message pays this read.
            window = read(c, session).await?;
            fresh = true;
            continue;
        };
        if swap(c, session, current, next).await? {
            known.set(session, next);
            return Ok(true);
        }
        window = read(c, session).await?;
        fresh = true;
    }
    Err(StoreError::failure(format!(
        "the window of a report session changed {ATTEMPTS} times while one message was accepted"
    )))
}

async fn read(c: &impl Db, session: &[u8]) -> StoreResult<Option<Window>> {
    row(
        c,
        "read session window",
        "SELECT highest, seen FROM session_windows WHERE session = $1",
        &[&session],
    )
    .await?
    .map(|r| {
        Ok(Window {
            highest: get::<i64>(&r, 0)?.cast_unsigned(),
            seen: get::<i64>(&r, 1)?.cast_unsigned(),
        })
    })
    .transpose()
}

/// Creates the session's window; false when another instance created it first.
async fn insert(
    c: &impl Db,
    session: &[u8],
    window: Window,
    expires_at: UnixSeconds,
) -> StoreResult<bool> {
    let written = execute(
        c,
        "open session window",
        "INSERT INTO session_windows (session, highest, seen, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session) DO NOTHING",
        &[
            &session,
            &window.highest.cast_signed(),
            &window.seen.cast_signed(),
            &expires_at,
        ],
    )
    .await?;
    Ok(written == 1)
}

/// Replaces the window `from` by `to`; false when the row no longer holds `from`.
async fn swap(c: &impl Db, session: &[u8], from: Window, to: Window) -> StoreResult<bool> {
    let written = execute(
        c,
        "write session window",
        "UPDATE session_windows SET highest = $4, seen = $5
         WHERE session = $1 AND highest = $2 AND seen = $3",
        &[
            &session,
            &from.highest.cast_signed(),
            &from.seen.cast_signed(),
            &to.highest.cast_signed(),
            &to.seen.cast_signed(),
        ],
    )
    .await?;
    Ok(written == 1)
}
