//! Turning a stable [`ErrorCode`] into an HTTP response. Every error body is an
//! [`ErrorBody`]; internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tally_proto::{ErrorBody, ErrorCode};
use tally_store::StoreError;

/// An error answered to a caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub server_time: Option<tally_proto::UnixSeconds>,
    /// What really failed, for the admin; never sent to the caller.
    pub detail: Option<String>,
}

/// Attached to a 500 response so the error notifier can say what failed.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            server_time: None,
            detail: None,
        }
    }

    /// The table's default message for `code`.
    pub fn plain(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }

    pub fn with_server_time(mut self, t: tally_proto::UnixSeconds) -> Self {
        self.server_time = Some(t);
        self
    }

    pub fn body(&self) -> ErrorBody {
        let mut b = ErrorBody::new(self.code, self.message.clone());
        b.server_time = self.server_time;
        b
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            e @ StoreError::Backend { .. } => {
                tracing::error!(error = %e, "store failure");
                let mut api = ApiError::plain(ErrorCode::Internal);
                api.detail = Some(e.to_string());
                api
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        if let Some(d) = self.detail {
            resp.extensions_mut().insert(InternalDetail(d));
        }
        resp
    }
}
