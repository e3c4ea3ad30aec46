//! Handshake codes and organizations kept in memory: every authorization and report looks one
//! up, while they change only by admin action. Every write that can change them clears the
//! cache after it committed; a generation number keeps a read that started before a clear from
//! putting its (possibly older) row back.

use std::collections::HashMap;
use std::sync::RwLock;

use tally_store::{HandshakeRow, OrganizationRow};

#[derive(Default)]
pub(crate) struct ReadCache {
    inner: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    generation: u64,
    handshakes: HashMap<String, HandshakeRow>,
    organizations: HashMap<String, OrganizationRow>,
}

/// The generation a read started in.
#[derive(Clone, Copy)]
pub(crate) struct Generation(u64);

impl ReadCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn generation(&self) -> Generation {
        Generation(self.read().generation)
    }

    pub fn handshake(&self, code: &str) -> Option<HandshakeRow> {
        self.read().handshakes.get(code).cloned()
    }

    pub fn organization(&self, id: &str) -> Option<OrganizationRow> {
        self.read().organizations.get(id).cloned()
    }

    /// Keeps `row` unless the cache was cleared since `seen`. Only rows that exist are kept, so
    /// unknown codes sent by anyone cannot fill memory.
    pub fn put_handshake(&self, seen: Generation, row: &HandshakeRow) {
        let mut maps = self.write();
        if maps.generation == seen.0 {
            maps.handshakes.insert(row.code.clone(), row.clone());
        }
    }

    pub fn put_organization(&self, seen: Generation, row: &OrganizationRow) {
        let mut maps = self.write();
        if maps.generation == seen.0 {
            maps.organizations.insert(row.id.clone(), row.clone());
        }
    }

    /// Forgets everything; called after a committed write that may change codes or organizations.
    pub fn clear(&self) {
        let mut maps = self.write();
        maps.generation += 1;
        maps.handshakes.clear();
        maps.organizations.clear();
    }
}
