//! SDK errors carry the stable codes of `tally-proto`, so a host application can react to
//! them by number whatever language it is written in.

use tally_proto::{ErrorBody, ErrorCode};

/// An SDK failure: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {}: {message}", code.code(), code.name())]
pub struct SdkError {
    pub code: ErrorCode,
    pub message: String,
    /// The number the server answered with, for server refusals. It differs from `code` only
    /// when the server speaks a code this SDK version does not know yet.
    pub server_code: Option<u16>,
}

/// Result of every fallible SDK call.
pub type SdkResult<T> = Result<T, SdkError>;

impl SdkError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            server_code: None,
        }
    }

    /// A refusal from the server. A code unknown to this SDK version is mapped by its family
    /// (1xx → `NoMatchingLicense`, 2xx → `BadRequest`, 3xx → `InvalidInput`, else `Internal`);
    /// its number stays in `server_code` and its name and text in the message.
    pub fn from_server(body: &ErrorBody) -> Self {
        let (code, message) = match body.error_code() {
            Some(code) => (code, body.message.clone()),
            None => (
                fallback_code(body.code),
                format!("server error {} {}: {}", body.code, body.name, body.message),
            ),
        };
        Self {
            code,
            message,
            server_code: Some(body.code),
        }
    }

    /// Whether this refusal, sealed by the server, takes the device's right to its cached grant:
    /// the server refuses this device the license (its quota, its code, its dates), not merely
    /// this request. The SDK then forgets the grant, so that going offline does not keep the
    /// product running.
    pub fn ends_grant(&self) -> bool {
        use ErrorCode as E;
        matches!(
            self.code,
            E::UnknownHandshakeCode
                | E::UnknownOrganization
                | E::HandshakeOrganizationMismatch
                | E::HandshakeDisabled
                | E::WrongSessionPassword
                | E::TrialUnavailable
                | E::ValidationFieldMismatch
                | E::NoMatchingLicense
                | E::LicenseExpired
                | E::LicenseNotYetValid
                | E::DeviceQuotaExceeded
                | E::UsageQuotaExceeded
                | E::SeatsExhausted
                | E::DomainQuotaExceeded
        ) && self.server_code == Some(self.code.code())
    }

    pub(crate) fn storage(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::LocalStorageFailed, format!("{what}: {e}"))
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn grant_invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::GrantInvalid, message)
    }
}

/// The known code standing for an unknown server code, by the table's numbering families:
/// 1xx refusals of a device, 2xx protocol errors, 3xx administration, anything else a fault.
pub fn fallback_code(code: u16) -> ErrorCode {
    match code {
        100..=199 => ErrorCode::NoMatchingLicense,
        200..=299 => ErrorCode::BadRequest,
        300..=399 => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_number_name_and_message() {
        let e = SdkError::new(ErrorCode::GrantExpired, "since yesterday");
        assert_eq!(e.to_string(), "1003 grant_expired: since yesterday");
    }

    #[test]
    fn unknown_server_codes_keep_their_number_and_text() {
        let body = ErrorBody {
            code: 142,
            name: "device_blocked".into(),
            message: "blocked by the administrator".into(),
            server_time: None,
        };
        let e = SdkError::from_server(&body);
        assert_eq!(e.code, ErrorCode::NoMatchingLicense);
        assert_eq!(e.server_code, Some(142));
        assert!(e.message.contains("142 device_blocked"), "{e}");
        assert!(e.message.contains("blocked by the administrator"), "{e}");

        let known = SdkError::from_server(&ErrorBody::new(ErrorCode::SeatsExhausted, "full"));
        assert_eq!(known.code, ErrorCode::SeatsExhausted);
        assert_eq!(known.message, "full");
        assert_eq!(fallback_code(250), ErrorCode::BadRequest);
        assert_eq!(fallback_code(599), ErrorCode::Internal);
    }
}
