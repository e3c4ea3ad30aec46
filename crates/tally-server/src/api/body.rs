//! Request bodies read by hand so that every failure (too large, not JSON, wrong fields) becomes
//! one of our stable errors instead of a framework default.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tally_proto::ErrorCode;

use crate::error::{ApiError, ApiResult};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The raw body, or PayloadTooLarge / BadRequest.
pub fn bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body exceeds {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(ErrorCode::BadRequest, r.body_text())
        }
    })
}

/// Parses JSON, naming the offending field on failure.
pub fn json<T: DeserializeOwned>(bytes: &[u8], code: ErrorCode) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(code, format!("invalid JSON body: {e}")))
}
