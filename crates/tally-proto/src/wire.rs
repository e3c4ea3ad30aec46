//! The client/server protocol, version [`PROTOCOL_VERSION`]. An authorization travels inside an
//! HPKE [`Envelope`] sealed to the server's X25519 key; its answer is sealed with a key exported
//! from the same HPKE context, and opens a report session in which usage reports travel
//! ([`SessionEnvelope`]). Reports are accepted only in a session: the ticket proves that the
//! server authorized this device on this handshake code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::UnixSeconds;
use crate::license::LicenseType;

/// The protocol version this code speaks; it is also the envelope version.
pub const PROTOCOL_VERSION: u8 = 2;

/// Path of the public identity endpoint (plain JSON).
pub const PATH_HELLO: &str = "/api/v2/hello";
/// Path of the authorize endpoint (sealed).
pub const PATH_AUTHORIZE: &str = "/api/v2/authorize";
/// Path of the usage report endpoint, within a report session (see [`SessionEnvelope`]).
pub const PATH_SESSION_REPORT: &str = "/api/v2/session/report";

/// Paths of protocol 1. A server answers them with `protocol_outdated`, so an SDK of that
/// version tells its host application to update instead of failing silently.
pub const RETIRED_PATHS: &[&str] = &[
    "/api/v1/hello",
    "/api/v1/authorize",
    "/api/v1/report",
    "/api/v1/session/report",
];

/// How long a report session opened by an authorization lasts.
pub const SESSION_SECONDS: i64 = 24 * 3600;

/// How far a request's `sent_at` may be from the server's clock.
pub const MAX_REQUEST_SKEW_SECONDS: i64 = 300;

/// Answer of `GET /api/v2/hello`: who the server is and the vendor-signed proof of it. Public:
/// it names no organization, item or quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    /// [`PROTOCOL_VERSION`] of the server.
    pub protocol: u8,
    pub uuid: String,
    pub signing_key: String,
    pub encryption_key: String,
    pub server_time: UnixSeconds,
    /// An armored server certificate: the vendor's signature binding these keys to a license
    /// id. Absent until a license is imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// An HPKE-sealed request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version of the envelope.
    pub v: u8,
    /// HPKE encapsulated key (base64).
    pub enc: String,
    /// Ciphertext (base64).
    pub ct: String,
}

/// A response sealed with the key exported from the request's HPKE context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedResponse {
    /// Ciphertext (base64) of a [`Reply`].
    pub ct: String,
}

/// The plaintext inside a [`SealedResponse`]: a result or a stable error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    Err(crate::ErrorBody),
}

/// Fields every sealed request carries for replay protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStamp {
    /// Random per request; a repeated id is refused.
    pub request_id: String,
    /// The client's estimate of the server's clock when sending.
    pub sent_at: UnixSeconds,
}

/// Where the request came from, checked against the handshake code's validation fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// Plaintext of an authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub stamp: RequestStamp,
    #[serde(default)]
    pub organization: String,
    #[serde(default)]
    pub handshake_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_password: Option<String>,
    pub device_uuid: String,
    pub product: String,
    /// Major version of the product asking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub validation: ValidationField,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// Offline days the client asks for (at least 1). It can only lower what the license item
    /// and the server allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_days: Option<u32>,
    /// Running instances on this device, for instance-counted licenses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
}

/// One license item a grant gives access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedItem {
    pub license_id: String,
    pub item_id: String,
    pub product: String,
    pub modules: Vec<String>,
    pub license_type: LicenseType,
    pub end: UnixSeconds,
    /// The end of the grace after `end`: between the two the item still authorizes, and the
    /// device shows a grace status.
    pub grace_end: UnixSeconds,
}

/// What the server signs when it authorizes a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: String,
    pub server_uuid: String,
    pub device_uuid: String,
    pub organization: String,
    pub handshake_code: String,
    pub items: Vec<GrantedItem>,
    pub issued_at: UnixSeconds,
    /// The device may use this grant until then, with or without the server: the seat's end and
    /// a small tolerance for concurrent licenses, the end of the UTC day for per-active-device
    /// ones, else the offline buffer; never beyond the item's grace.
    pub valid_until: UnixSeconds,
    /// When the SDK renews the grant in the background, well before `valid_until`.
    pub renew_at: UnixSeconds,
    /// For seat-based licenses: the seat is held until then unless renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_until: Option<UnixSeconds>,
}

/// A grant with the server's Ed25519 signature over the exact payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    /// JSON of a [`Grant`] (base64).
    pub payload: String,
    /// Ed25519 signature of the payload bytes (base64).
    pub signature: String,
}

/// Reply to an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeResponse {
    pub grant: SignedGrant,
    /// Activated license files (armored) proving the server key and the granted items.
    pub certificates: Vec<String>,
    pub server_time: UnixSeconds,
    /// A report session for this device and code: later reports can use symmetric encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionGrant>,
}

/// A report session the server opened at authorization. The session key itself never travels:
/// both sides export it from the authorization's HPKE context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// Opaque to the client; sent with every report of the session.
    pub ticket: String,
    /// Server time after which the ticket is refused (`session_expired`).
    pub expires_at: UnixSeconds,
}

/// A [`ReportRequest`] encrypted with a session key (XChaCha20-Poly1305, a random nonce, the
/// direction, `seq` and the ticket bound as associated data). The client increases `seq` with
/// every message of the session; the server refuses a number it has already seen. The reply is
/// a [`SealedResponse`] encrypted the same way with the other direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnvelope {
    pub v: u8,
    pub ticket: String,
    pub seq: u64,
    /// Ciphertext (base64).
    pub ct: String,
}

/// Usage counters of one device for one slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Unique id; the server counts a report id once however often it is sent.
    pub report_id: String,
    /// Slice index (see [`crate::slice`]).
    pub slice: i64,
    /// Count per feature, e.g. `scan`, `scan.symbology.qr`, `page`.
    pub counts: BTreeMap<String, u64>,
}

/// Plaintext of a usage report request. The device and handshake code are the session's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    /// The client's estimate of the server clock when sending.
    pub sent_at: UnixSeconds,
    pub reports: Vec<UsageReport>,
}

/// Reply to a usage report, judged report by report: every report id the server now holds (new
/// or already counted), the reports it refuses for good (the client drops them), and the
/// per-usage items whose limit is used up (the device stops using them until a new
/// authorization succeeds). A report named nowhere was not judged: send it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResponse {
    pub accepted: Vec<String>,
    pub duplicates: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedReport>,
    /// Ids of per-usage items at or beyond their limit (quantity plus grace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exhausted: Vec<String>,
    pub server_time: UnixSeconds,
}

/// A report the server will never count (malformed): the client drops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedReport {
    pub report_id: String,
    /// A stable error code (`bad_request`).
    pub code: u16,
    pub message: String,
}

/// Most reports one request may carry.
pub const MAX_REPORTS_PER_REQUEST: usize = 500;
/// Most features one report may carry.
pub const MAX_FEATURES_PER_REPORT: usize = 64;
/// Longest feature name.
pub const MAX_FEATURE_LEN: usize = 128;
/// Longest device friendly name.
pub const MAX_FRIENDLY_NAME_LEN: usize = 255;
