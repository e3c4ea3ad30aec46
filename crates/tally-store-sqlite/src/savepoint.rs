//! A savepoint for the hot write paths (admission, reports). rusqlite's `Savepoint` parses its
//! `SAVEPOINT`/`RELEASE` text on every use; this one runs statements prepared once per
//! connection. Dropped without [`Savepoint::commit`], it undoes its writes.

use rusqlite::Connection;
use tally_store::StoreResult;

use crate::backend;

pub(crate) struct Savepoint<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Savepoint<'c> {
    pub fn begin(conn: &'c Connection) -> StoreResult<Self> {
        conn.prepare_cached("SAVEPOINT job")
            .and_then(|mut s| s.execute([]))
            .map_err(backend("begin savepoint"))?;
        Ok(Self { conn, open: true })
    }

    /// Keeps the writes (they become durable with the enclosing transaction's commit).
    pub fn commit(mut self) -> StoreResult<()> {
        self.open = false;
        self.conn
            .prepare_cached("RELEASE job")
            .and_then(|mut s| s.execute([]))
            .map_err(backend("release savepoint"))?;
        Ok(())
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let undo = self
                .conn
                .prepare_cached("ROLLBACK TO job")
                .and_then(|mut s| s.execute([]))
                .and_then(|_| self.conn.prepare_cached("RELEASE job"))
                .and_then(|mut s| s.execute([]));
            if let Err(e) = undo {
                tracing::error!(error = %e, "cannot undo a failed write");
            }
        }
    }
}
