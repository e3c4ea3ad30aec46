//! The admin JSON API under `/api/admin`, guarded by a bearer token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, extract::rejection::QueryRejection};
use subtle::ConstantTimeEq;
use tally_proto::ErrorCode;
use tally_proto::admin::{
    CreateHandshake, DeviceView, HandshakeView, ImportedLicense, ItemView, ServerStatus,
    UpdateHandshake, UsageQuery, UsageRow,
};
use tally_proto::license::ActivationRequest;

use crate::api::body;
use crate::error::{ApiError, ApiResult};
use crate::service;
use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/activation-request", get(activation_request))
        .route("/licenses", get(licenses).post(import_license))
        .route("/items", get(items))
        .route("/handshakes", get(handshakes).post(create_handshake))
        .route("/handshakes/{code}", get(handshake).patch(update_handshake))
        .route("/devices", get(devices))
        .route("/stats/usage", get(usage))
        .route("/email", get(email_settings).put(put_email_settings))
        .route("/email/test", axum::routing::post(test_email))
        .route("/webhooks", get(webhook_settings).put(put_webhook_settings))
        .route("/alerts", get(alerts))
        .route("/alerts/evaluate", axum::routing::post(evaluate_alerts))
        .layer(middleware::from_fn_with_state(state, require_token))
}

/// Refuses requests without the admin bearer token (compared in constant time).
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::plain(ErrorCode::Unauthorized).into_response()
    }
}

async fn status(State(state): State<AppState>) -> ApiResult<Json<ServerStatus>> {
    Ok(Json(ServerStatus {
        uuid: state.identity.uuid.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        identity_ok: state.identity.mismatch.is_none(),
        licenses: state.store.licenses().await?.len() as u64,
        server_time: state.now(),
    }))
}

async fn activation_request(State(state): State<AppState>) -> Json<ActivationRequest> {
    Json(state.identity.activation_request())
}

/// A license summary for listings.
#[derive(serde::Serialize)]
struct LicenseSummary {
    license_id: String,
    alias: String,
    organization: String,
    items: Vec<String>,
    imported_at: i64,
}

async fn licenses(State(state): State<AppState>) -> ApiResult<Json<Vec<LicenseSummary>>> {
    let rows = state.store.licenses().await?;
    Ok(Json(
        rows.into_iter()
            .map(|l| LicenseSummary {
                license_id: l.license.license_id,
                alias: l.license.alias,
                organization: l.license.organization.id,
                items: l.license.items.into_iter().map(|i| i.id).collect(),
                imported_at: l.imported_at,
            })
            .collect(),
    ))
}

/// Body: the activated license file as text.
async fn import_license(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ImportedLicense>> {
    let bytes = body::bytes(raw)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidLicenseFile,
            "the license file is not UTF-8 text",
        )
    })?;
    let imported = service::licenses::import(&state, text).await?;
    let detail = format!("{} for {}", imported.license_id, imported.organization);
    service::audit::record(&state, "api", "license.import", detail).await;
    Ok(Json(imported))
}

async fn items(State(state): State<AppState>) -> ApiResult<Json<Vec<ItemView>>> {
    Ok(Json(service::licenses::items(&state).await?))
}

async fn handshakes(State(state): State<AppState>) -> ApiResult<Json<Vec<HandshakeView>>> {
    Ok(Json(service::handshakes::list(&state).await?))
}

async fn create_handshake(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<HandshakeView>> {
    let bytes = body::bytes(raw)?;
    let req: CreateHandshake = body::json(&bytes, ErrorCode::InvalidInput)?;
    let view = service::handshakes::create(&state, req).await?;
    let detail = format!("{} for {}", view.code, view.organization);
    service::audit::record(&state, "api", "handshake.create", detail).await;
    Ok(Json(view))
}

async fn handshake(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<HandshakeView>> {
    let all = service::handshakes::list(&state).await?;
    all.into_iter()
        .find(|h| h.code == code)
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("handshake code {code}")))
}

async fn update_handshake(
    State(state): State<AppState>,
    Path(code): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<HandshakeView>> {
    let bytes = body::bytes(raw)?;
    let req: UpdateHandshake = body::json(&bytes, ErrorCode::InvalidInput)?;
    let view = service::handshakes::update(&state, &code, req).await?;
    service::audit::record(&state, "api", "handshake.update", code).await;
    Ok(Json(view))
}

/// Paging of `GET /api/admin/devices`: without `limit`, every registration.
#[derive(serde::Deserialize)]
struct DevicePage {
    limit: Option<u32>,
    #[serde(default)]
    offset: u64,
}

async fn devices(
    State(state): State<AppState>,
    page: Result<axum::extract::Query<DevicePage>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let axum::extract::Query(page) =
        page.map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.body_text()))?;
    let rows = match page.limit {
        Some(limit) => state.store.recent_devices(limit, page.offset).await?,
        None => state.store.devices().await?,
    };
    Ok(Json(
        rows.into_iter()
            .map(|d| DeviceView {
                device_uuid: d.device_uuid,
                item_id: d.item_id,
                handshake_code: d.handshake_code,
                friendly_name: d.friendly_name,
                first_seen: d.first_seen,
                last_seen: d.last_seen,
                active_until: d.active_until,
            })
            .collect(),
    ))
}

async fn usage(
    State(state): State<AppState>,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<UsageRow>>> {
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.body_text()))?;
    Ok(Json(service::stats::usage(&state, q).await?))
}

/// Shown instead of a saved password; sending it back keeps the saved one.
const MASK: &str = "********";

async fn email_settings(
    State(state): State<AppState>,
) -> ApiResult<Json<Option<tally_proto::admin::EmailSettings>>> {
    let mut s = crate::alerts::mail::settings(&state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
    if let Some(s) = s.as_mut()
        && s.password.is_some()
    {
        s.password = Some(MASK.into());
    }
    Ok(Json(s))
}

async fn put_email_settings(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let bytes = body::bytes(raw)?;
    let new: tally_proto::admin::EmailSettings = body::json(&bytes, ErrorCode::InvalidInput)?;
    let saved = service::alerting::save_email(&state, new).await?;
    service::audit::record(
        &state,
        "api",
        "email.settings",
        format!("{}:{}", saved.host, saved.port),
    )
    .await;
    Ok(Json(serde_json::json!({"saved": true})))
}

async fn test_email(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    service::alerting::test_email(&state).await?;
    Ok(Json(serde_json::json!({"sent": true})))
}

async fn webhook_settings(
    State(state): State<AppState>,
) -> ApiResult<Json<tally_proto::admin::WebhookSettings>> {
    let mut s = crate::alerts::webhook::settings(&state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
    if !s.secret.is_empty() {
        s.secret = MASK.into();
    }
    Ok(Json(s))
}

async fn put_webhook_settings(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let bytes = body::bytes(raw)?;
    let new: tally_proto::admin::WebhookSettings = body::json(&bytes, ErrorCode::InvalidInput)?;
    service::alerting::save_webhooks(&state, new).await?;
    service::audit::record(&state, "api", "webhooks.settings", String::new()).await;
    Ok(Json(serde_json::json!({"saved": true})))
}

async fn alerts(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<tally_proto::admin::AlertView>>> {
    Ok(Json(service::alerting::history(&state, 200).await?))
}

async fn evaluate_alerts(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let wait = std::time::Duration::from_secs(10);
    let evaluation = crate::alerts::evaluate_once(&state, wait)
        .await
        .map_err(|e| {
            let mut err = ApiError::plain(ErrorCode::Internal);
            err.detail = Some(e);
            err
        })?;
    match evaluation {
        crate::alerts::Evaluation::Done(id) => Ok(Json(serde_json::json!({"alert_id": id}))),
        crate::alerts::Evaluation::Busy => Err(ApiError::new(
            ErrorCode::Conflict,
            "another server instance is evaluating alerts; try again in a moment",
        )),
    }
}
