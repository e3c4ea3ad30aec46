//! Creating and listing handshake codes.

use tally_proto::ErrorCode;
use tally_proto::admin::{CreateHandshake, HandshakeView, UpdateHandshake, ValidationRules};
use tally_store::{HandshakeChange, HandshakeRow, NewHandshake};

use crate::error::{ApiError, ApiResult};
use crate::service::{password, validate};
use crate::state::AppState;

pub async fn create(state: &AppState, req: CreateHandshake) -> ApiResult<HandshakeView> {
    let code = match req.code {
        Some(c) => c,
        None => tally_crypto::random_id()
            .map_err(|e| ApiError::internal(format!("no random handshake code: {e}")))?
            .chars()
            .take(12)
            .collect(),
    };
    validate::identifier("code", &code, ErrorCode::InvalidInput)?;
    validate::identifier("organization", &req.organization, ErrorCode::InvalidInput)?;
    check_item_list(&req.items)?;
    if let Some(d) = &req.description {
        validate::text("description", d, 255, ErrorCode::InvalidInput)?;
    }
    state
        .store
        .create_handshake(NewHandshake {
            code: code.clone(),
            organization: req.organization,
            items: req.items,
            description: req.description,
            created_at: state.now(),
        })
        .await?;
    let row =
        state.store.handshake(&code).await?.ok_or_else(|| {
            ApiError::internal("a handshake code just created cannot be read back")
        })?;
    Ok(view(row))
}

/// Applies an admin's change: item order, session password, validation fields, enabled flag.
pub async fn update(
    state: &AppState,
    code: &str,
    req: UpdateHandshake,
) -> ApiResult<HandshakeView> {
    if let Some(items) = &req.items {
        check_item_list(items)?;
    }
    if req.items.is_some() && req.default_order {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "give either items (a custom order) or default_order, not both",
        ));
    }
    let session_password_hash = match &req.session_password {
        None => None,
        Some(p) if p.is_empty() => Some(None),
        Some(p) => {
            if p.chars().count() < 8 || p.len() > 255 {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "session_password: 8 to 255 characters",
                ));
            }
            Some(Some(password::hash(state, p).await.map_err(|e| {
                ApiError::internal(format!("hashing a session password failed: {e}"))
            })?))
        }
    };
    if let Some(rules) = &req.validation {
        check_rules(rules)?;
    }
    if let Some(d) = &req.description {
        validate::text("description", d, 255, ErrorCode::InvalidInput)?;
    }
    state
        .store
        .update_handshake(
            code,
            HandshakeChange {
                items: req.items,
                default_order: req.default_order,
                session_password_hash,
                validation: req.validation,
                enabled: req.enabled,
                description: req.description,
            },
        )
        .await?;
    let row = state
        .store
        .handshake(code)
        .await?
        .ok_or_else(|| ApiError::plain(ErrorCode::NotFound))?;
    Ok(view(row))
}

fn check_item_list(items: &[String]) -> ApiResult<()> {
    if items.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "items: attach at least one license item",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("items: `{item}` is listed twice"),
            ));
        }
    }
    Ok(())
}

fn check_rules(rules: &ValidationRules) -> ApiResult<()> {
    for (field, list) in [
        ("domains", &rules.domains),
        ("app_ids", &rules.app_ids),
        ("process_names", &rules.process_names),
    ] {
        if list.len() > 100 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("validation.{field}: at most 100 patterns"),
            ));
        }
        for p in list {
            if p.trim().is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("validation.{field}: empty pattern"),
                ));
            }
            validate::text(
                &format!("validation.{field}"),
                p,
                255,
                ErrorCode::InvalidInput,
            )?;
        }
    }
    Ok(())
}

pub async fn list(state: &AppState) -> ApiResult<Vec<HandshakeView>> {
    Ok(state
        .store
        .handshakes()
        .await?
        .into_iter()
        .map(view)
        .collect())
}

fn view(row: HandshakeRow) -> HandshakeView {
    HandshakeView {
        code: row.code,
        organization: row.organization,
        items: row.items.into_iter().map(|(_, i)| i.id).collect(),
        description: row.description,
        enabled: row.enabled,
        is_default: row.is_default,
        custom_order: row.custom_order,
        has_session_password: row.session_password_hash.is_some(),
        validation: row.validation,
    }
}
