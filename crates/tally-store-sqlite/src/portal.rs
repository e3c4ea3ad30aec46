//! Portal sessions and the audit log.

use rusqlite::{Connection, OptionalExtension, params};
use tally_proto::UnixSeconds;
use tally_store::{AuditEntry, PortalSession, StoreResult};

use crate::backend;

pub fn create_session(c: &mut Connection, s: &PortalSession) -> StoreResult<()> {
    c.execute(
        "DELETE FROM portal_sessions WHERE expires_at <= ?1",
        [s.created_at],
    )
    .map_err(backend("purge sessions"))?;
    c.execute(
        "INSERT INTO portal_sessions (token_hash, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![s.token_hash, s.csrf, s.created_at, s.expires_at],
    )
    .map_err(backend("create session"))?;
    Ok(())
}

pub fn session(
    c: &Connection,
    token_hash: &str,
    now: UnixSeconds,
) -> StoreResult<Option<PortalSession>> {
    c.query_row(
        "SELECT token_hash, csrf, created_at, expires_at FROM portal_sessions
         WHERE token_hash = ?1 AND expires_at > ?2",
        params![token_hash, now],
        |r| {
            Ok(PortalSession {
                token_hash: r.get(0)?,
                csrf: r.get(1)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(backend("read session"))
}

pub fn delete_session(c: &mut Connection, token_hash: Option<&str>) -> StoreResult<()> {
    match token_hash {
        Some(h) => c.execute("DELETE FROM portal_sessions WHERE token_hash = ?1", [h]),
        None => c.execute("DELETE FROM portal_sessions", []),
    }
    .map_err(backend("delete session"))?;
    Ok(())
}

pub fn record_audit(c: &mut Connection, e: &AuditEntry) -> StoreResult<()> {
    c.execute(
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![e.at, e.actor, e.action, e.detail],
    )
    .map_err(backend("record audit"))?;
    Ok(())
}

pub fn audit_log(c: &Connection, limit: u32) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c
        .prepare("SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?1")
        .map_err(backend("read audit log"))?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })
        .map_err(backend("read audit log"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read audit entry"))
}
