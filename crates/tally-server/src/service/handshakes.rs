//! Creating and listing handshake codes.

use tally_proto::ErrorCode;
use tally_proto::admin::{CreateHandshake, HandshakeView};
use tally_store::{HandshakeRow, NewHandshake};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::validate;

pub async fn create(state: &AppState, req: CreateHandshake) -> ApiResult<HandshakeView> {
    let code = match req.code {
        Some(c) => c,
        None => tally_crypto::random_id()
            .map_err(|_| ApiError::plain(ErrorCode::Internal))?
            .chars()
            .take(12)
            .collect(),
    };
    validate::identifier("code", &code, ErrorCode::InvalidInput)?;
    validate::identifier("organization", &req.organization, ErrorCode::InvalidInput)?;
    if req.items.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "items: attach at least one license item",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for item in &req.items {
        if !seen.insert(item) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("items: `{item}` is listed twice"),
            ));
        }
    }
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
    let row = state
        .store
        .handshake(&code)
        .await?
        .ok_or_else(|| ApiError::plain(ErrorCode::Internal))?;
    Ok(view(row))
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
    }
}
