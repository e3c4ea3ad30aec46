//! Handshake codes and organizations kept in memory by a store: every authorization and report
//! looks one up, while they change only by admin action. Every write that can change them clears
//! the cache after it committed (a store shared by several instances also clears it when another
//! instance says it wrote); a generation number keeps a read that started before a clear from
//! putting its (possibly older) row back. A cache turned off answers nothing and keeps nothing.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::{HandshakeRow, OrganizationRow};

#[derive(Default)]
pub struct ReadCache {
    inner: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    /// While true, nothing is answered or kept (the store cannot learn of other writers).
    off: bool,
    generation: u64,
    handshakes: HashMap<String, HandshakeRow>,
    organizations: HashMap<String, OrganizationRow>,
}

/// The generation a read started in.
#[derive(Clone, Copy)]
pub struct Generation(u64);

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

    /// A number that changes whenever the cache is cleared, for the store's
    /// [`crate::Store::config_version`]; `None` while the cache is off.
    pub fn version(&self) -> Option<u64> {
        let maps = self.read();
        (!maps.off).then_some(maps.generation)
    }

    pub fn handshake(&self, code: &str) -> Option<HandshakeRow> {
        self.read().handshakes.get(code).cloned()
    }

    pub fn organization(&self, id: &str) -> Option<OrganizationRow> {
        self.read().organizations.get(id).cloned()
    }

    /// Turns the cache off (cleared) or on again (cleared as well: what happened meanwhile is
    /// unknown).
    pub fn set_off(&self, off: bool) {
        let mut maps = self.write();
        maps.off = off;
        maps.generation += 1;
        maps.handshakes.clear();
        maps.organizations.clear();
    }

    /// Keeps `row` unless the cache was cleared since `seen`. Only rows that exist are kept, so
    /// unknown codes sent by anyone cannot fill memory.
    pub fn put_handshake(&self, seen: Generation, row: &HandshakeRow) {
        let mut maps = self.write();
        if maps.generation == seen.0 && !maps.off {
            maps.handshakes.insert(row.code.clone(), row.clone());
        }
    }

    pub fn put_organization(&self, seen: Generation, row: &OrganizationRow) {
        let mut maps = self.write();
        if maps.generation == seen.0 && !maps.off {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrganizationRow {
        OrganizationRow {
            id: id.into(),
            name: id.into(),
            default_code: format!("{id}-default"),
        }
    }

    #[test]
    fn a_read_from_before_a_clear_is_not_kept_nor_anything_while_off() {
        let cache = ReadCache::default();
        let seen = cache.generation();
        cache.clear();
        cache.put_organization(seen, &org("old"));
        assert_eq!(cache.organization("old"), None);
        let seen = cache.generation();
        cache.put_organization(seen, &org("acme"));
        assert_eq!(cache.organization("acme"), Some(org("acme")));
        cache.set_off(true);
        assert_eq!(cache.organization("acme"), None, "turning off clears");
        let seen = cache.generation();
        cache.put_organization(seen, &org("acme"));
        assert_eq!(
            cache.organization("acme"),
            None,
            "nothing is kept while off"
        );
        cache.set_off(false);
        let seen = cache.generation();
        cache.put_organization(seen, &org("acme"));
        assert_eq!(cache.organization("acme"), Some(org("acme")));
    }
}
