//! Organizations and handshake codes.

use rusqlite::{Connection, OptionalExtension, params};
use tally_proto::admin::ValidationRules;
use tally_store::{
    HandshakeChange, HandshakeRow, NewHandshake, OrganizationRow, StoreError, StoreResult,
};

use crate::licenses::parse_item;
use crate::{backend, corrupt};

pub fn organization(c: &Connection, id: &str) -> StoreResult<Option<OrganizationRow>> {
    c.query_row(
        "SELECT id, name, default_code FROM organizations WHERE id = ?1",
        [id],
        |r| {
            Ok(OrganizationRow {
                id: r.get(0)?,
                name: r.get(1)?,
                default_code: r.get(2)?,
            })
        },
    )
    .optional()
    .map_err(backend("read organization"))
}

pub fn create(c: &mut Connection, h: &NewHandshake) -> StoreResult<()> {
    let tx = c.savepoint().map_err(backend("begin"))?;
    if organization(&tx, &h.organization)?.is_none() {
        return Err(StoreError::NotFound(format!(
            "organization {}",
            h.organization
        )));
    }
    let exists = tx
        .query_row(
            "SELECT 1 FROM handshakes WHERE code = ?1",
            [&h.code],
            |_| Ok(()),
        )
        .optional()
        .map_err(backend("read handshake"))?
        .is_some();
    if exists {
        return Err(StoreError::Conflict(format!(
            "handshake code {} already exists",
            h.code
        )));
    }
    check_items(&tx, &h.organization, &h.items)?;
    tx.execute(
        "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
         VALUES (?1, ?2, ?3, 1, 0, ?4)",
        params![h.code, h.organization, h.description, h.created_at],
    )
    .map_err(backend("insert handshake"))?;
    attach_items(&tx, &h.code, &h.items)?;
    tx.commit().map_err(backend("commit handshake"))
}

/// Every item must exist and belong to `organization`.
fn check_items(c: &Connection, organization: &str, items: &[String]) -> StoreResult<()> {
    for item in items {
        let owner: Option<String> = c
            .query_row(
                "SELECT organization FROM items WHERE item_id = ?1",
                [item],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("read item"))?;
        match owner {
            None => return Err(StoreError::NotFound(format!("license item {item}"))),
            Some(o) if o != organization => {
                return Err(StoreError::Conflict(format!(
                    "license item {item} belongs to organization {o}, not {organization}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Replaces the code's items with `items`, in that order.
fn attach_items(c: &Connection, code: &str, items: &[String]) -> StoreResult<()> {
    c.execute("DELETE FROM handshake_items WHERE code = ?1", [code])
        .map_err(backend("detach items"))?;
    for (position, item) in items.iter().enumerate() {
        c.execute(
            "INSERT INTO handshake_items (code, item_id, position) VALUES (?1, ?2, ?3)",
            params![code, item, position as i64],
        )
        .map_err(backend("attach item"))?;
    }
    Ok(())
}

pub fn update(c: &mut Connection, code: &str, change: &HandshakeChange) -> StoreResult<()> {
    let tx = c.savepoint().map_err(backend("begin"))?;
    let org: Option<String> = tx
        .query_row(
            "SELECT organization FROM handshakes WHERE code = ?1",
            [code],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend("read handshake"))?;
    let Some(org) = org else {
        return Err(StoreError::NotFound(format!("handshake code {code}")));
    };
    if let Some(items) = &change.items {
        check_items(&tx, &org, items)?;
        attach_items(&tx, code, items)?;
        tx.execute(
            "UPDATE handshakes SET custom_order = 1 WHERE code = ?1",
            [code],
        )
        .map_err(backend("set order"))?;
    }
    if change.default_order {
        tx.execute(
            "UPDATE handshakes SET custom_order = 0 WHERE code = ?1",
            [code],
        )
        .map_err(backend("set order"))?;
    }
    if let Some(hash) = &change.session_password_hash {
        tx.execute(
            "UPDATE handshakes SET session_password_hash = ?2 WHERE code = ?1",
            params![code, hash],
        )
        .map_err(backend("set password"))?;
    }
    if let Some(rules) = &change.validation {
        let json = serde_json::to_string(rules).map_err(corrupt("validation"))?;
        tx.execute(
            "UPDATE handshakes SET validation = ?2 WHERE code = ?1",
            params![code, json],
        )
        .map_err(backend("set validation"))?;
    }
    if let Some(enabled) = change.enabled {
        tx.execute(
            "UPDATE handshakes SET enabled = ?2 WHERE code = ?1",
            params![code, enabled],
        )
        .map_err(backend("set enabled"))?;
    }
    if let Some(d) = &change.description {
        tx.execute(
            "UPDATE handshakes SET description = ?2 WHERE code = ?1",
            params![code, d],
        )
        .map_err(backend("set description"))?;
    }
    tx.commit().map_err(backend("commit handshake"))
}

pub fn get(c: &Connection, code: &str) -> StoreResult<Option<HandshakeRow>> {
    let head = c
        .query_row(
            "SELECT code, organization, description, enabled, is_default, custom_order,
                    session_password_hash, validation
             FROM handshakes WHERE code = ?1",
            [code],
            |r| {
                Ok((
                    HandshakeRow {
                        code: r.get(0)?,
                        organization: r.get(1)?,
                        description: r.get(2)?,
                        enabled: r.get(3)?,
                        is_default: r.get(4)?,
                        custom_order: r.get(5)?,
                        session_password_hash: r.get(6)?,
                        validation: ValidationRules::default(),
                        items: Vec::new(),
                    },
                    r.get::<_, Option<String>>(7)?,
                ))
            },
        )
        .optional()
        .map_err(backend("read handshake"))?;
    let Some((mut row, validation)) = head else {
        return Ok(None);
    };
    if let Some(json) = validation {
        row.validation = serde_json::from_str(&json).map_err(corrupt("validation"))?;
    }
    let mut stmt = c
        .prepare(
            "SELECT i.license_id, i.spec FROM handshake_items h JOIN items i ON i.item_id = h.item_id
             WHERE h.code = ?1 ORDER BY h.position",
        )
        .map_err(backend("read handshake items"))?;
    let items = stmt
        .query_map([code], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(backend("read handshake items"))?;
    for item in items {
        let (license_id, spec) = item.map_err(backend("read handshake item"))?;
        row.items.push((license_id, parse_item(&spec)?));
    }
    if !row.custom_order {
        tally_core::order::default_order_with(&mut row.items, |(_, item)| item);
    }
    Ok(Some(row))
}

pub fn list(c: &Connection) -> StoreResult<Vec<HandshakeRow>> {
    let mut stmt = c
        .prepare("SELECT code FROM handshakes ORDER BY organization, is_default DESC, code")
        .map_err(backend("list handshakes"))?;
    let codes = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(backend("list handshakes"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend("list handshakes"))?;
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        if let Some(row) = get(c, &code)? {
            out.push(row);
        }
    }
    Ok(out)
}
