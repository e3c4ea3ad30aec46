//! Bodies of the admin JSON API (`/api/admin/…`, bearer token).

use serde::{Deserialize, Serialize};

use crate::UnixSeconds;
use crate::license::{ActiveWindow, LicenseType};

/// A license item as the server holds it, with its live usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    pub item_id: String,
    pub license_id: String,
    pub organization: String,
    pub product: String,
    pub modules: Vec<String>,
    pub license_type: LicenseType,
    pub quantity: u64,
    pub used: u64,
    pub start: UnixSeconds,
    pub end: UnixSeconds,
    /// The item keeps authorizing, with a grace status on devices, until then.
    pub grace_end: UnixSeconds,
    /// Most days a device may work offline on it (the item's cap, lowered by the server's).
    pub offline_days: u32,
    pub grace_percent: u8,
    pub active_window: ActiveWindow,
}

/// Result of importing a license file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedLicense {
    pub license_id: String,
    pub alias: String,
    pub organization: String,
    pub items: Vec<String>,
    /// The organization's default handshake code, which the new items were attached to.
    pub default_handshake_code: String,
    /// False when this exact license was already imported (importing again changes nothing).
    pub newly_imported: bool,
}

/// Create a handshake code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateHandshake {
    /// The code clients send; generated when absent.
    #[serde(default)]
    pub code: Option<String>,
    pub organization: String,
    /// License item ids to attach. They are consumed in the default order (closest expiry, most
    /// specific, least restrictive) until the admin sets an order with [`UpdateHandshake`].
    pub items: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Where requests to a handshake code may come from. An empty list allows anything; patterns
/// may use `*` (any run of characters) and `?` (one character); domains compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRules {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub app_ids: Vec<String>,
    #[serde(default)]
    pub process_names: Vec<String>,
}

impl ValidationRules {
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.app_ids.is_empty() && self.process_names.is_empty()
    }
}

/// Change a handshake code; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateHandshake {
    /// Item ids in the consumption order the admin chooses (replaces the item list).
    #[serde(default)]
    pub items: Option<Vec<String>>,
    /// Go back to the default consumption order (closest expiry, most specific, least restrictive).
    #[serde(default)]
    pub default_order: bool,
    /// A new session password; an empty string removes it.
    #[serde(default)]
    pub session_password: Option<String>,
    #[serde(default)]
    pub validation: Option<ValidationRules>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A handshake code as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeView {
    pub code: String,
    pub organization: String,
    /// Item ids in consumption order.
    pub items: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub is_default: bool,
    /// True when the admin chose the order; false when the default order applies.
    pub custom_order: bool,
    pub has_session_password: bool,
    pub validation: ValidationRules,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub device_uuid: String,
    pub item_id: String,
    pub handshake_code: String,
    pub friendly_name: Option<String>,
    pub first_seen: UnixSeconds,
    pub last_seen: UnixSeconds,
    pub active_until: UnixSeconds,
}

/// Usage per handshake code, per UTC day, per feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub handshake_code: String,
    pub feature: String,
    pub count: u64,
}

/// Query of `GET /api/admin/stats/usage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub handshake_code: Option<String>,
}

/// Server status for the admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub uuid: String,
    pub version: String,
    pub identity_ok: bool,
    pub licenses: u64,
    pub server_time: UnixSeconds,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where and how alert emails are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    /// The From address, e.g. `Tally <tally@example.com>`.
    pub sender: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
}

/// Where alert events are posted as JSON, signed with HMAC-SHA256 of the body under `secret`
/// (header `X-Tally-Signature: sha256=<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub secret: String,
}

/// One alert sent (or attempted), as the history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    pub at: UnixSeconds,
    pub subject: String,
    /// Every condition met at that evaluation, one per line.
    pub body: String,
    /// `sent`, `not configured` or the failure.
    pub email: String,
    /// `sent`, `not configured` or the failures.
    pub webhooks: String,
    /// Every attempt to deliver it, oldest first (failed deliveries are retried for a day).
    #[serde(default)]
    pub attempts: Vec<DeliveryAttemptView>,
}

/// One attempt to deliver an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttemptView {
    pub at: UnixSeconds,
    /// `email`, or the webhook URL.
    pub channel: String,
    /// `sent`, or why it failed.
    pub outcome: String,
}
