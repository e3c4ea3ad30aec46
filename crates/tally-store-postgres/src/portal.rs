//! Portal sessions and the audit log.

use deadpool_postgres::Transaction;
use tally_proto::UnixSeconds;
use tally_store::{AuditEntry, PortalSession, StoreResult};

use crate::connection::{Db, execute, get, row, rows};

pub async fn create_session(tx: &Transaction<'_>, s: &PortalSession) -> StoreResult<()> {
    execute(
        tx,
        "purge sessions",
        "DELETE FROM portal_sessions WHERE expires_at <= $1",
        &[&s.created_at],
    )
    .await?;
    execute(
        tx,
        "create session",
        "INSERT INTO portal_sessions (token_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&s.token_hash, &s.csrf, &s.created_at, &s.expires_at],
    )
    .await
    .map(drop)
}

pub async fn session(
    c: &impl Db,
    token_hash: &str,
    now: UnixSeconds,
) -> StoreResult<Option<PortalSession>> {
    let Some(r) = row(
        c,
        "read session",
        "SELECT token_hash, csrf, created_at, expires_at FROM portal_sessions
         WHERE token_hash = $1 AND expires_at > $2",
        &[&token_hash, &now],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(PortalSession {
        token_hash: get(&r, 0)?,
        csrf: get(&r, 1)?,
        created_at: get(&r, 2)?,
        expires_at: get(&r, 3)?,
    }))
}

pub async fn delete_session(c: &impl Db, token_hash: Option<&str>) -> StoreResult<()> {
    match token_hash {
        Some(h) => {
            execute(
                c,
                "delete session",
                "DELETE FROM portal_sessions WHERE token_hash = $1",
                &[&h],
            )
            .await
        }
        None => execute(c, "delete sessions", "DELETE FROM portal_sessions", &[]).await,
    }
    .map(drop)
}

pub async fn record_audit(c: &impl Db, e: &AuditEntry) -> StoreResult<()> {
    execute(
        c,
        "record audit",
        "INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)",
        &[&e.at, &e.actor, &e.action, &e.detail],
    )
    .await
    .map(drop)
}

pub async fn audit_log(c: &impl Db, limit: u32) -> StoreResult<Vec<AuditEntry>> {
    rows(
        c,
        "read audit log",
        "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        &[&i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AuditEntry {
            at: get(r, 0)?,
            actor: get(r, 1)?,
            action: get(r, 2)?,
            detail: get(r, 3)?,
        })
    })
    .collect()
}
