//! Replay protection for sealed requests. Each HPKE envelope has a unique encapsulated key; a
//! server remembers those it has opened for as long as their timestamp would still be accepted,
//! and refuses a second use. Older envelopes are refused by the timestamp check instead.

use std::collections::HashMap;
use std::sync::Mutex;

use tally_proto::UnixSeconds;

/// Envelopes seen recently, with the time after which they can be forgotten.
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], UnixSeconds>>,
}

impl ReplayCache {
    /// Records `id`; false if it was already recorded and has not expired.
    pub fn first_use(&self, id: [u8; 32], now: UnixSeconds, forget_after: UnixSeconds) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if seen.len() > 10_000 {
            seen.retain(|_, until| *until > now);
        }
        match seen.get(&id) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(id, forget_after);
                true
            }
        }
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
    }
}
