//! Organizations and handshake codes.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tally_store::{HandshakeRow, NewHandshake, OrganizationRow, StoreError, StoreResult};

use crate::backend;
use crate::licenses::parse_item;

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
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin"))?;
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
    for item in &h.items {
        let owner: Option<String> = tx
            .query_row(
                "SELECT organization FROM items WHERE item_id = ?1",
                [item],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("read item"))?;
        match owner {
            None => return Err(StoreError::NotFound(format!("license item {item}"))),
            Some(o) if o != h.organization => {
                return Err(StoreError::Conflict(format!(
                    "license item {item} belongs to organization {o}, not {}",
                    h.organization
                )));
            }
            Some(_) => {}
        }
    }
    tx.execute(
        "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
         VALUES (?1, ?2, ?3, 1, 0, ?4)",
        params![h.code, h.organization, h.description, h.created_at],
    )
    .map_err(backend("insert handshake"))?;
    for (position, item) in h.items.iter().enumerate() {
        tx.execute(
            "INSERT INTO handshake_items (code, item_id, position) VALUES (?1, ?2, ?3)",
            params![h.code, item, position as i64],
        )
        .map_err(backend("attach item"))?;
    }
    tx.commit().map_err(backend("commit handshake"))
}

pub fn get(c: &Connection, code: &str) -> StoreResult<Option<HandshakeRow>> {
    let head = c
        .query_row(
            "SELECT code, organization, description, enabled, is_default FROM handshakes WHERE code = ?1",
            [code],
            |r| {
                Ok(HandshakeRow {
                    code: r.get(0)?,
                    organization: r.get(1)?,
                    description: r.get(2)?,
                    enabled: r.get(3)?,
                    is_default: r.get(4)?,
                    items: Vec::new(),
                })
            },
        )
        .optional()
        .map_err(backend("read handshake"))?;
    let Some(mut row) = head else { return Ok(None) };
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
