//! The one table of stable error codes. Server responses, the SDK, the CLI and
//! `docs/error-codes.md` all come from this table; a code never changes meaning once released.

use serde::{Deserialize, Serialize};

/// Whether a code is a refusal, a fault, or a success that carries a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The request was refused or failed.
    Error,
    /// The operation succeeded, but the caller should know something (e.g. a cached grant).
    Warning,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: u16,
    pub name: &'static str,
    /// HTTP status the server answers with; 0 for codes that only the SDK produces.
    pub http_status: u16,
    pub severity: Severity,
    pub message: &'static str,
}

macro_rules! error_table {
    ($( $variant:ident = $code:literal, $name:literal, $status:literal, $sev:ident, $msg:literal; )*) => {
        /// A stable error code. See the module documentation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The table row of this code.
            pub const fn info(self) -> ErrorInfo {
                match self {
                    $( ErrorCode::$variant => ErrorInfo {
                        code: $code, name: $name, http_status: $status,
                        severity: Severity::$sev, message: $msg,
                    }, )*
                }
            }
        }
    };
}

error_table! {
    // Server readiness and identity.
    ServerNotReady = 100, "server_not_ready", 503, Error, "The server has no usable license: import a license file activated for this server.";
    IdentityMismatch = 101, "identity_mismatch", 503, Error, "The server's hardware labels no longer match its UUID; imported licenses are refused until the labels match again.";
    // Resolution of organization and handshake code.
    UnknownHandshakeCode = 110, "unknown_handshake_code", 404, Error, "The handshake code does not exist on this server.";
    UnknownOrganization = 111, "unknown_organization", 404, Error, "The organization does not exist or has no default handshake code.";
    HandshakeOrganizationMismatch = 112, "handshake_organization_mismatch", 403, Error, "The handshake code does not belong to this organization.";
    HandshakeDisabled = 113, "handshake_disabled", 403, Error, "The handshake code is disabled.";
    WrongSessionPassword = 114, "wrong_session_password", 401, Error, "The session password is incorrect.";
    TrialUnavailable = 115, "trial_unavailable", 403, Error, "No organization or handshake code was given and this device cannot get a public trial.";
    ValidationFieldMismatch = 116, "validation_field_mismatch", 403, Error, "The domain, app id or process name is not allowed for this handshake code.";
    TooManyAttempts = 117, "too_many_attempts", 429, Error, "Too many wrong session passwords came from this address or for this handshake code; retry later.";
    OriginNotAllowed = 118, "origin_not_allowed", 403, Error, "The web page's origin is not among the domains of this handshake code, or the page names a domain other than its own.";
    // Matching the request against license items.
    NoMatchingLicense = 120, "no_matching_license", 403, Error, "No license item on this handshake code matches the product, version and modules requested.";
    LicenseExpired = 121, "license_expired", 403, Error, "Every matching license item has expired.";
    LicenseNotYetValid = 122, "license_not_yet_valid", 403, Error, "No matching license item has started yet.";
    // Quotas.
    DeviceQuotaExceeded = 130, "device_quota_exceeded", 403, Error, "The license has no room for another device.";
    UsageQuotaExceeded = 131, "usage_quota_exceeded", 403, Error, "The usage quota of the license is used up.";
    SeatsExhausted = 132, "seats_exhausted", 403, Error, "Every concurrent seat of the license is taken.";
    DomainQuotaExceeded = 133, "domain_quota_exceeded", 403, Error, "The license has no room for another domain.";
    NoLivePlace = 134, "no_live_place", 403, Error, "This device holds no live registration or seat on the handshake code: authorize again before reporting usage.";
    // Protocol.
    BadRequest = 200, "bad_request", 400, Error, "The request is malformed.";
    BadEnvelope = 201, "bad_envelope", 400, Error, "The request could not be decrypted for this server.";
    ReplayedRequest = 202, "replayed_request", 409, Error, "This request was already received once.";
    StaleRequest = 203, "stale_request", 400, Error, "The request's timestamp is too far from the server's clock.";
    PayloadTooLarge = 204, "payload_too_large", 413, Error, "The request body is too large.";
    SessionExpired = 205, "session_expired", 401, Error, "The report session is unknown or has expired: authorize again to open a new one.";
    ProtocolOutdated = 206, "protocol_outdated", 410, Error, "The client speaks an older protocol than this server: update the SDK.";
    // Administration.
    Unauthorized = 300, "unauthorized", 401, Error, "A valid admin bearer token is required.";
    InvalidLicenseFile = 301, "invalid_license_file", 422, Error, "The license file is malformed or its signature is not valid.";
    LicenseForAnotherServer = 302, "license_for_another_server", 422, Error, "The license file is activated for another server.";
    LicenseNotActivated = 303, "license_not_activated", 422, Error, "The license file must be activated for this server before it can be imported.";
    NotFound = 304, "not_found", 404, Error, "The requested object does not exist.";
    Conflict = 305, "conflict", 409, Error, "The object already exists or conflicts with another one.";
    InvalidInput = 306, "invalid_input", 400, Error, "A field of the request is invalid.";
    EmailFailed = 307, "email_failed", 502, Error, "The email could not be sent; the message says why (connection, TLS, authentication, address).";
    Internal = 500, "internal", 500, Error, "The server failed to complete the request; the administrator has been told.";
    // Produced by the SDK only.
    ServerUnreachable = 1000, "server_unreachable", 0, Error, "No server answered.";
    CachedGrantUsed = 1001, "cached_grant_used", 0, Warning, "The server could not be reached; a valid cached grant is used.";
    GrantInvalid = 1002, "grant_invalid", 0, Error, "The grant or its license chain failed verification.";
    GrantExpired = 1003, "grant_expired", 0, Error, "The cached grant has expired; contact the server.";
    LocalStorageFailed = 1004, "local_storage_failed", 0, Error, "The SDK could not read or write its local state.";
    ClockRollback = 1005, "clock_rollback", 0, Error, "The device clock went backwards; the cached grant is refused.";
    NoGrant = 1006, "no_grant", 0, Error, "The device has never been authorized.";
    ServerNotTrusted = 1007, "server_not_trusted", 0, Error, "The server could not prove a license activation signed by the vendor.";
    SeatLapsed = 1008, "seat_lapsed", 0, Error, "The concurrent seat has lapsed and no server renewed it; the product must reach the server to run again.";
    LicenseInGrace = 1009, "license_in_grace", 0, Warning, "The license has ended and keeps working only during its grace period: renew it.";
}

impl ErrorCode {
    pub fn code(self) -> u16 {
        self.info().code
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    pub fn message(self) -> &'static str {
        self.info().message
    }
    pub fn http_status(self) -> u16 {
        self.info().http_status
    }
    /// Looks a code up by its number.
    pub fn from_code(code: u16) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

/// The JSON body of every error the server answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    pub name: String,
    /// Human-readable detail, specific to this occurrence.
    pub message: String,
    /// The server's clock, so a client can correct a stale timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<crate::UnixSeconds>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            name: code.name().to_owned(),
            message: message.into(),
            server_time: None,
        }
    }

    /// The typed code, if this server speaks a code the caller knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }
}

/// Renders the table as Markdown (the source of `docs/error-codes.md`).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| code | name | HTTP | severity | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in ErrorCode::ALL {
        let i = c.info();
        let status = if i.http_status == 0 {
            "SDK".to_owned()
        } else {
            i.http_status.to_string()
        };
        let sev = match i.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            i.code, i.name, status, sev, i.message
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<u16> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn lookup_round_trips() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
        }
        assert_eq!(ErrorCode::from_code(9999), None);
    }

    #[test]
    fn docs_table_is_current() {
        let doc = include_str!("../../../docs/error-codes.md");
        assert!(
            doc.contains(&markdown_table()),
            "docs/error-codes.md is out of date: regenerate it with `tally error-codes`"
        );
    }
}
