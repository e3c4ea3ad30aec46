//! Behaviour of the SQLite store on a real database file: the store conformance suite
//! (`tally-store-conformance`, module `conformance`), then what only SQLite has: backups,
//! migrations, reopening a file, the data-set generator and the maintained counters' tables.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::sync::Arc;

use tally_store::*;
use tally_store_conformance::Subject;
use tally_store_conformance::fixtures::*;
use tally_store_sqlite::SqliteStore;

mod backup;
mod migrations;
mod properties;
mod reopen;
mod seed;

/// The store at `dir/tally.db`, created if missing.
fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("tally.db")).unwrap()
}

/// A new database in a temporary directory, removed after the test.
async fn open_subject() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    Subject::new(Arc::new(store), dir)
}

tally_store_conformance::conformance_suite! {
    open: crate::open_subject,
}
