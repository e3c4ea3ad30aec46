//! The PostgreSQL store against a real server: the conformance suite every store passes, and
//! what only several connections or processes can show. Each test runs in a schema of its own
//! in the database named by `TALLY_TEST_DATABASE_URL`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod database;
mod instances;

use std::sync::Arc;

use tally_store_conformance::Subject;
use tally_store_postgres::PostgresStore;

/// A store on a fresh schema of the test database.
async fn open_subject() -> Subject {
    let scratch = database::Scratch::create().await;
    let store = PostgresStore::connect(&scratch.url()).await.unwrap();
    Subject::new(Arc::new(store), Box::new(scratch))
}

tally_store_conformance::conformance_suite! {
    open: crate::open_subject,
    attributes: #[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
}
