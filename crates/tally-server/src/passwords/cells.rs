//! The state governor's GCRA keeps per key (the theoretical arrival time of the key's next cell),
//! in a map of ours rather than governor's own stores, for one reason: a cell is taken *before*
//! Argon2 runs, so that concurrent guesses can never queue more hashes than the budget allows,
//! and must go back when the password turns out right, since only wrong passwords count.
//! governor's stores cannot give a cell back; this one can.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;

/// Shared between the rate limiter (which owns its store) and the throttle (which gives back).
pub struct Cells<K>(Arc<Mutex<HashMap<K, Nanos>>>);

impl<K> Clone for Cells<K> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<K: Hash + Eq + Clone> Cells<K> {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(HashMap::new())))
    }

    /// Undoes one taken cell of `cell` nanoseconds: GCRA took it by pushing the arrival time
    /// `cell` later. Exact unless the cell was held longer than `cell` while others were taken;
    /// then at most that one cell is forgiven.
    pub fn give_back(&self, key: &K, cell: Nanos) {
        if let Some(arrival) = self.lock().get_mut(key) {
            *arrival = arrival.saturating_sub(cell);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Nanos>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq + Clone> StateStore for Cells<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut cells = self.lock();
        let (outcome, next) = f(cells.get(key).copied())?;
        cells.insert(key.clone(), next);
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for Cells<K> {
    /// Drops the keys whose next arrival is past: they are as good as new.
    fn retain_recent(&self, drop_below: Nanos) {
        self.lock().retain(|_, arrival| *arrival > drop_below);
    }

    fn shrink_to_fit(&self) {
        self.lock().shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
