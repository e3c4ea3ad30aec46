//! SDK errors carry the stable codes of `tally-proto`, so a host application can react to
//! them by number whatever language it is written in.

use tally_proto::{ErrorBody, ErrorCode};

/// An SDK failure: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {}: {message}", code.code(), code.name())]
pub struct SdkError {
    pub code: ErrorCode,
    pub message: String,
}

pub type SdkResult<T> = Result<T, SdkError>;

impl SdkError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A refusal from the server. Codes unknown to this SDK version keep their text.
    pub fn from_server(body: &ErrorBody) -> Self {
        match body.error_code() {
            Some(code) => Self::new(code, body.message.clone()),
            None => Self::new(
                ErrorCode::Internal,
                format!("server error {} {}: {}", body.code, body.name, body.message),
            ),
        }
    }

    pub(crate) fn storage(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::LocalStorageFailed, format!("{what}: {e}"))
    }
}
