//! Replay protection, kept in memory.
//!
//! * HPKE envelopes ([`ReplayCache`]): each has a unique encapsulated key; the server remembers
//!   those it opened for as long as their timestamp would still be accepted, and refuses a second
//!   use. Older envelopes are refused by the timestamp check instead.
//! * Report sessions ([`SessionWindows`]): each message carries a sequence number; the server
//!   keeps, per session, the highest number seen and a 64-message window below it (as IPsec
//!   does), so memory grows with sessions, not with messages.
//!
//! With a store shared by several instances, both are also recorded in the store
//! (`AppState::first_use_of_envelope`, `AppState::accept_session_message`), so that a request
//! replayed to another instance is refused there too.
//!
//! After a restart both are empty: a captured request could be replayed once within its
//! timestamp window. Reports are counted once per report id, so a replayed report adds nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tally_crypto::session::{SessionKey, TicketContents};
use tally_proto::UnixSeconds;

/// Bytes of an envelope's id that are remembered.
pub const KEPT_ID_BYTES: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Envelopes seen recently, grouped by the second after which they can be forgotten, so that
/// forgetting costs only the entries that expire.
#[derive(Default)]
pub struct ReplayCache {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<[u8; 16]>,
    by_expiry: BTreeMap<UnixSeconds, Vec<[u8; 16]>>,
}

impl ReplayCache {
    /// Records `id`; false if it was recorded before and has not been forgotten. Only the first
    /// [`KEPT_ID_BYTES`] are kept: 128 random bits do not collide.
    pub fn first_use(&self, id: [u8; 32], now: UnixSeconds, forget_after: UnixSeconds) -> bool {
        let mut short = [0u8; KEPT_ID_BYTES];
        short.copy_from_slice(&id[..KEPT_ID_BYTES]);
        let mut seen = lock(&self.inner);
        while let Some(entry) = seen.by_expiry.first_entry() {
            if *entry.key() > now {
                break;
            }
            for old in entry.remove() {
                seen.ids.remove(&old);
            }
        }
        if !seen.ids.insert(short) {
            return false;
        }
        seen.by_expiry.entry(forget_after).or_default().push(short);
        true
    }

    /// Envelopes currently remembered.
    pub fn len(&self) -> usize {
        lock(&self.inner).ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How often expired sessions are swept out, in seconds.
const SWEEP_EVERY: UnixSeconds = 60;

#[derive(Default)]
pub struct SessionWindows {
    inner: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_session: HashMap<[u8; 16], Window>,
    next_sweep: UnixSeconds,
}

struct Window {
    numbers: tally_core::replay_window::Window,
    expires_at: UnixSeconds,
    /// The ticket's key and contents, so that it is decrypted once per session, not per message.
    opened: Arc<(SessionKey, TicketContents)>,
}

impl SessionWindows {
    /// The key and contents of the ticket with this id, if a message of its session was accepted
    /// before. Safe to use without decrypting the ticket again: a message only opens under the
    /// key of the session its sender really holds, whatever ticket bytes it carries.
    pub fn opened(&self, id: &[u8; 16]) -> Option<Arc<(SessionKey, TicketContents)>> {
        lock(&self.inner)
            .by_session
            .get(id)
            .map(|w| w.opened.clone())
    }

    /// Accepts message `seq` of session `id` once ([`tally_core::replay_window`]). Call it only
    /// for a message that opened under the session's key.
    pub fn accept(
        &self,
        id: [u8; 16],
        seq: u64,
        opened: &Arc<(SessionKey, TicketContents)>,
        now: UnixSeconds,
    ) -> bool {
        if seq == 0 {
            return false;
        }
        let mut w = lock(&self.inner);
        if now >= w.next_sweep {
            w.by_session.retain(|_, s| s.expires_at > now);
            w.next_sweep = now + SWEEP_EVERY;
        }
        let window = w.by_session.entry(id).or_insert_with(|| Window {
            numbers: tally_core::replay_window::Window::default(),
            expires_at: opened.1.expires_at,
            opened: opened.clone(),
        });
        match tally_core::replay_window::accept(window.numbers, seq) {
            Some(numbers) => {
                window.numbers = numbers;
                true
            }
            None => false,
        }
    }

    /// Sessions currently tracked.
    pub fn len(&self) -> usize {
        lock(&self.inner).by_session.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_refused_until_forgotten() {
        let c = ReplayCache::default();
        assert!(c.first_use([1; 32], 0, 600));
        assert!(!c.first_use([1; 32], 10, 610));
        assert!(c.first_use([2; 32], 10, 610));
        assert!(c.first_use([1; 32], 601, 1200));
        // Forgetting happened only for what expired.
        assert!(!c.first_use([2; 32], 605, 1200));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn expired_envelopes_are_forgotten_without_scanning_the_rest() {
        let c = ReplayCache::default();
        for i in 0..50_000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            assert!(c.first_use(id, 0, 100 + i64::from(i % 10)));
        }
        assert_eq!(c.len(), 50_000);
        assert!(c.first_use([9; 32], 105, 700));
        assert_eq!(c.len(), 20_001);
    }

    fn opened(expires_at: UnixSeconds) -> Arc<(SessionKey, TicketContents)> {
        Arc::new((
            SessionKey::from_bytes([1; 32]),
            TicketContents {
                device_uuid: "d".into(),
                handshake_code: "c".into(),
                expires_at,
            },
        ))
    }

    #[test]
    fn session_numbers_are_accepted_once_within_the_window() {
        let w = SessionWindows::default();
        let id = [3; 16];
        let o = opened(100);
        assert!(w.opened(&id).is_none());
        assert!(!w.accept(id, 0, &o, 0), "numbers start at 1");
        assert!(w.accept(id, 1, &o, 0));
        assert!(w.opened(&id).is_some());
        assert!(!w.accept(id, 1, &o, 0));
        assert!(w.accept(id, 5, &o, 0));
        assert!(w.accept(id, 3, &o, 0), "late but inside the window");
        assert!(!w.accept(id, 3, &o, 0));
        assert!(w.accept(id, 200, &o, 0));
        assert!(!w.accept(id, 136, &o, 0), "64 behind the highest");
        assert!(w.accept(id, 137, &o, 0));
        assert!(!w.accept(id, 200, &o, 0));
        assert!(w.accept([4; 16], 1, &o, 0), "sessions are independent");
        assert_eq!(w.len(), 2);
        assert!(
            w.accept([5; 16], 1, &opened(200), 150),
            "the sweep drops expired sessions"
        );
        assert_eq!(w.len(), 1);
        assert!(w.opened(&id).is_none());
    }
}
