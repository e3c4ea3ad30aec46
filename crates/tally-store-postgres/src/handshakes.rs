//! Organizations and handshake codes.

use deadpool_postgres::Transaction;
use tally_proto::admin::ValidationRules;
use tally_store::{
    HandshakeChange, HandshakeRow, NewHandshake, OrganizationRow, StoreError, StoreResult,
};

use crate::connection::{Db, corrupt, execute, get, row, rows};
use crate::licenses::parse_item;

pub async fn organization(c: &impl Db, id: &str) -> StoreResult<Option<OrganizationRow>> {
    let Some(r) = row(
        c,
        "read organization",
        "SELECT id, name, default_code FROM organizations WHERE id = $1",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(OrganizationRow {
        id: get(&r, 0)?,
        name: get(&r, 1)?,
        default_code: get(&r, 2)?,
    }))
}

pub async fn create(tx: &Transaction<'_>, h: &NewHandshake) -> StoreResult<()> {
    if organization(tx, &h.organization).await?.is_none() {
        return Err(StoreError::NotFound(format!(
            "organization {}",
            h.organization
        )));
    }
    let exists = row(
        tx,
        "read handshake",
        "SELECT 1 FROM handshakes WHERE code = $1",
        &[&h.code],
    )
    .await?
    .is_some();
    if exists {
        return Err(StoreError::Conflict(format!(
            "handshake code {} already exists",
            h.code
        )));
    }
    check_items(tx, &h.organization, &h.items).await?;
    let inserted = execute(
        tx,
        "insert handshake",
        "INSERT INTO handshakes (code, organization, description, enabled, is_default, created_at)
         VALUES ($1, $2, $3, TRUE, FALSE, $4) ON CONFLICT (code) DO NOTHING",
        &[&h.code, &h.organization, &h.description, &h.created_at],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "handshake code {} already exists",
            h.code
        )));
    }
    attach_items(tx, &h.code, &h.items).await
}

/// Every item must exist and belong to `organization`.
async fn check_items(c: &impl Db, organization: &str, items: &[String]) -> StoreResult<()> {
    for item in items {
        let owner = row(
            c,
            "read item",
            "SELECT organization FROM items WHERE item_id = $1",
            &[item],
        )
        .await?;
        let Some(owner) = owner else {
            return Err(StoreError::NotFound(format!("license item {item}")));
        };
        let owner: String = get(&owner, 0)?;
        if owner != organization {
            return Err(StoreError::Conflict(format!(
                "license item {item} belongs to organization {owner}, not {organization}"
            )));
        }
    }
    Ok(())
}

/// Replaces the code's items with `items`, in that order.
async fn attach_items(c: &impl Db, code: &str, items: &[String]) -> StoreResult<()> {
    execute(
        c,
        "detach items",
        "DELETE FROM handshake_items WHERE code = $1",
        &[&code],
    )
    .await?;
    for (position, item) in items.iter().enumerate() {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        execute(
            c,
            "attach item",
            "INSERT INTO handshake_items (code, item_id, position) VALUES ($1, $2, $3)",
            &[&code, item, &position],
        )
        .await?;
    }
    Ok(())
}

pub async fn update(tx: &Transaction<'_>, code: &str, change: &HandshakeChange) -> StoreResult<()> {
    let org = row(
        tx,
        "read handshake",
        "SELECT organization FROM handshakes WHERE code = $1 FOR UPDATE",
        &[&code],
    )
    .await?;
    let Some(org) = org else {
        return Err(StoreError::NotFound(format!("handshake code {code}")));
    };
    let org: String = get(&org, 0)?;
    if let Some(items) = &change.items {
        check_items(tx, &org, items).await?;
        attach_items(tx, code, items).await?;
        execute(
            tx,
            "set order",
            "UPDATE handshakes SET custom_order = TRUE WHERE code = $1",
            &[&code],
        )
        .await?;
    }
    if change.default_order {
        execute(
            tx,
            "set order",
            "UPDATE handshakes SET custom_order = FALSE WHERE code = $1",
            &[&code],
        )
        .await?;
    }
    if let Some(hash) = &change.session_password_hash {
        execute(
            tx,
            "set password",
            "UPDATE handshakes SET session_password_hash = $2 WHERE code = $1",
            &[&code, hash],
        )
        .await?;
    }
    if let Some(rules) = &change.validation {
        let json = serde_json::to_string(rules).map_err(corrupt("validation"))?;
        execute(
            tx,
            "set validation",
            "UPDATE handshakes SET validation = $2 WHERE code = $1",
            &[&code, &json],
        )
        .await?;
    }
    if let Some(enabled) = change.enabled {
        execute(
            tx,
            "set enabled",
            "UPDATE handshakes SET enabled = $2 WHERE code = $1",
            &[&code, &enabled],
        )
        .await?;
    }
    if let Some(d) = &change.description {
        execute(
            tx,
            "set description",
            "UPDATE handshakes SET description = $2 WHERE code = $1",
            &[&code, d],
        )
        .await?;
    }
    Ok(())
}

pub async fn get_code(c: &impl Db, code: &str) -> StoreResult<Option<HandshakeRow>> {
    let Some(r) = row(
        c,
        "read handshake",
        "SELECT code, organization, description, enabled, is_default, custom_order,
                session_password_hash, validation
         FROM handshakes WHERE code = $1",
        &[&code],
    )
    .await?
    else {
        return Ok(None);
    };
    let validation: Option<String> = get(&r, 7)?;
    let mut handshake = HandshakeRow {
        code: get(&r, 0)?,
        organization: get(&r, 1)?,
        description: get(&r, 2)?,
        enabled: get(&r, 3)?,
        is_default: get(&r, 4)?,
        custom_order: get(&r, 5)?,
        session_password_hash: get(&r, 6)?,
        validation: match validation {
            Some(json) => serde_json::from_str(&json).map_err(corrupt("validation"))?,
            None => ValidationRules::default(),
        },
        items: Vec::new(),
    };
    for item in rows(
        c,
        "read handshake items",
        "SELECT i.license_id, i.spec FROM handshake_items h JOIN items i ON i.item_id = h.item_id
         WHERE h.code = $1 ORDER BY h.position",
        &[&code],
    )
    .await?
    {
        let spec: String = get(&item, 1)?;
        handshake.items.push((get(&item, 0)?, parse_item(&spec)?));
    }
    if !handshake.custom_order {
        tally_core::order::default_order_with(&mut handshake.items, |(_, item)| item);
    }
    Ok(Some(handshake))
}

pub async fn list(c: &impl Db) -> StoreResult<Vec<HandshakeRow>> {
    let codes = rows(
        c,
        "list handshakes",
        "SELECT code FROM handshakes ORDER BY organization, is_default DESC, code",
        &[],
    )
    .await?;
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        let code: String = get(&code, 0)?;
        if let Some(row) = get_code(c, &code).await? {
            out.push(row);
        }
    }
    Ok(out)
}
