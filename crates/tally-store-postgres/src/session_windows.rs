//! Report-session windows shared by the instances on one database, kept with compare-and-set
//! instead of a transaction that locks the row: a report costs one statement (no `BEGIN`, no
//! `SELECT … FOR UPDATE`, no `COMMIT` of its own) in the common case, where this instance wrote
//! the session's window last and still knows it. (Accepting the messages in the writer's batches
//! instead made each report wait for two commits: slower, see docs/performance.md.)
//!
//! | what this instance knows of the session | statements |
//! | --- | --- |
//! | the window it wrote last, still current | one `UPDATE … WHERE` the window is that one |
//! | nothing (first message) | a read, then an `INSERT` of the new window |
//! | a stale window (another instance wrote since) | the failed `UPDATE`, a read, an `UPDATE` |
//! | a window that refuses the message | a read: the database's window decides |
//!
//! The rule itself is [`tally_core::replay_window::accept`]; a message is accepted only when the
//! statement that writes its window changed exactly the row it read.

use std::collections::HashMap;
use std::sync::Mutex;

use tally_core::replay_window::{self, Window};
use tally_proto::UnixSeconds;
use tally_store::{StoreError, StoreResult};

use crate::connection::{Db, execute, get, row};

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

/// Accepts message `seq` of `session` once across all instances (see the module doc).
pub async fn accept(
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
