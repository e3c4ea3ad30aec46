//! Turning a stable [`ErrorCode`] into an HTTP response. Every error body is an
//! [`ErrorBody`]; internal details are logged where the 500 is made and handed to the error
//! notifier ([`InternalDetail`]), never sent. A full disk is named as such.

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

    /// An internal error caused by `cause`: the caller reads the table's message, the log and
    /// the admin's notice read the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::plain(ErrorCode::Internal);
        e.detail = Some(cause.to_string());
        e
    }

    /// The table's default message for `code`.
    pub fn plain(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }

    pub fn with_server_time(mut self, t: tally_proto::UnixSeconds) -> Self {
        self.server_time = Some(t);
        self
    }

    /// What the caller is sent: for an internal error the table's message only, whatever the
    /// code that made it put in `message`.
    pub fn body(&self) -> ErrorBody {
        let message = if self.code == ErrorCode::Internal {
            self.code.message().to_owned()
        } else {
            self.message.clone()
        };
        let mut b = ErrorBody::new(self.code, message);
        b.server_time = self.server_time;
        b
    }

    /// For an internal error: logs its cause and returns it for the error notifier. The cause
    /// is `detail`, else a `message` other than the table's.
    pub fn internal_detail(&self) -> Option<InternalDetail> {
        if self.code != ErrorCode::Internal {
            return None;
        }
        let cause = match &self.detail {
            Some(d) => d.clone(),
            None if self.message != self.code.message() => self.message.clone(),
            None => "no cause recorded".to_owned(),
        };
        tracing::error!(error = %cause, "internal error");
        Some(InternalDetail(cause))
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
                let full = e.cause().is_some_and(|c| is_disk_full(c));
                if full {
                    ApiError::internal(format!("{DISK_FULL}: {e}"))
                } else {
                    ApiError::internal(e)
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = self.internal_detail();
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        if let Some(d) = detail {
            resp.extensions_mut().insert(d);
        }
        resp
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        match e {
            crate::secrets::SecretError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

/// How every notice and log line about a full disk begins.
pub const DISK_FULL: &str = "the disk is full";

/// SQLite's text for `SQLITE_FULL` and the C library's for `ENOSPC`: stores keep their driver's
/// error only as a boxed cause (this crate depends on no driver), so the text is what is left.
const DISK_FULL_TEXTS: [&str; 2] = ["database or disk is full", "No space left on device"];

/// `ENOSPC` on Linux and the BSDs.
const ENOSPC: i32 = 28;

/// Whether `e` or one of its causes says the disk is full.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC))
        {
            return true;
        }
        let text = e.to_string();
        if DISK_FULL_TEXTS.iter().any(|t| text.contains(t)) {
            return true;
        }
        next = e.source();
    }
    false
}

/// `text` (a notice) beginning with "the disk is full" when it reports a full disk, so the
/// admin reads the remedy first.
pub fn with_disk_full_hint(text: String) -> String {
    if !text.contains(DISK_FULL) && DISK_FULL_TEXTS.iter().any(|t| text.contains(t)) {
        format!("{DISK_FULL}: {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_from_the_caller_and_gives_it_to_the_admin() {
        let e = ApiError::new(ErrorCode::Internal, "saved webhook settings are damaged");
        assert_eq!(e.body().message, ErrorCode::Internal.message());
        let detail = e.internal_detail().unwrap();
        assert_eq!(detail.0, "saved webhook settings are damaged");
        let resp = ApiError::internal("the key is wrong").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            resp.extensions().get::<InternalDetail>().unwrap().0,
            "the key is wrong"
        );
        assert!(
            ApiError::plain(ErrorCode::NotFound)
                .internal_detail()
                .is_none()
        );
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let enospc = StoreError::backend("commit", std::io::Error::from_raw_os_error(ENOSPC));
        let api = ApiError::from(enospc);
        let detail = api.detail.unwrap();
        assert!(
            detail.starts_with("the disk is full: storage failure: commit"),
            "{detail}"
        );
        let sqlite_full = StoreError::backend("insert handshake", "database or disk is full");
        assert!(
            ApiError::from(sqlite_full)
                .detail
                .unwrap()
                .starts_with(DISK_FULL)
        );
        let other = StoreError::backend("insert", "UNIQUE constraint failed");
        assert!(!ApiError::from(other).detail.unwrap().contains(DISK_FULL));

        let notice = with_disk_full_hint(
            "backup failed: cannot write: No space left on device (os error 28)".into(),
        );
        assert!(
            notice.starts_with("the disk is full: backup failed"),
            "{notice}"
        );
        assert_eq!(
            with_disk_full_hint("the disk is full: x".into()),
            "the disk is full: x"
        );
        assert_eq!(with_disk_full_hint("timeout".into()), "timeout");
    }
}
