//! Rows exchanged with a [`crate::Store`].

use std::collections::BTreeMap;

use tally_core::admission::{Ask, Decision};
use tally_proto::UnixSeconds;
use tally_proto::admin::ValidationRules;
use tally_proto::license::{License, LicenseItem};

/// An activated license to import.
#[derive(Debug, Clone)]
pub struct NewLicense {
    /// The license as verified (its items are stored one row each).
    pub license: License,
    /// The armored activated license file, kept verbatim: clients receive it as proof.
    pub activated_text: String,
    /// Handshake code to create as the organization's default, if the organization is new.
    pub default_code: String,
    pub imported_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub newly_imported: bool,
    /// The organization's default handshake code (existing or just created).
    pub default_code: String,
}

#[derive(Debug, Clone)]
pub struct StoredLicense {
    pub license: License,
    pub activated_text: String,
    pub imported_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub license_id: String,
    pub organization: String,
    pub item: LicenseItem,
    /// What the item's quota counts, at the time asked: active devices (per device), devices
    /// today (per active device), seats or instances held (concurrent, per instance), usage
    /// (per usage) or domains (per domain).
    pub used: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub default_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHandshake {
    pub code: String,
    pub organization: String,
    /// Item ids to attach (consumed in the default order until the admin reorders them).
    pub items: Vec<String>,
    pub description: Option<String>,
    pub created_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRow {
    pub code: String,
    pub organization: String,
    /// Items (with the license id) in consumption order: the admin's order when
    /// `custom_order`, else the default order of `tally_core::order`.
    pub items: Vec<(String, LicenseItem)>,
    pub description: Option<String>,
    pub enabled: bool,
    pub is_default: bool,
    pub custom_order: bool,
    /// Argon2 PHC string of the session password, if one is set.
    pub session_password_hash: Option<String>,
    pub validation: ValidationRules,
}

/// Changes to a handshake code; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeChange {
    /// New item list in the admin's consumption order.
    pub items: Option<Vec<String>>,
    /// Return to the default consumption order.
    pub default_order: bool,
    /// `Some(None)` removes the session password.
    pub session_password_hash: Option<Option<String>>,
    pub validation: Option<ValidationRules>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// A device asking for a place on one of `candidates` (already matching and in date, in
/// consumption order).
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    pub device_uuid: String,
    pub handshake_code: String,
    pub friendly_name: Option<String>,
    pub candidates: Vec<LicenseItem>,
    /// Instances and domain the request declares.
    pub ask: Ask,
    pub now: UnixSeconds,
}

/// The decision taken and, when admitted, the item the device now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub device_uuid: String,
    pub item_id: String,
    pub handshake_code: String,
    pub friendly_name: Option<String>,
    pub first_seen: UnixSeconds,
    pub last_seen: UnixSeconds,
    pub active_until: UnixSeconds,
    /// Seats or instances held.
    pub units: u64,
    pub domain: Option<String>,
}

/// One report as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub report_id: String,
    /// Slice index (3-minute UTC slices).
    pub slice: i64,
    pub counts: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBatch {
    pub device_uuid: String,
    pub handshake_code: String,
    pub reports: Vec<ReportRow>,
    pub received_at: UnixSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportOutcome {
    /// Report ids counted by this call.
    pub accepted: Vec<String>,
    /// Report ids that had been counted before (not counted again).
    pub duplicates: Vec<String>,
    /// The per-usage item this batch was charged to, when it is used up (see
    /// `tally_core::reporting::usage_exhausted`) after the charge.
    pub exhausted: Vec<String>,
}

/// What became of a batch of reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportResult {
    Recorded(ReportOutcome),
    /// The device holds no live registration or seat on the code: nothing was recorded.
    NoLivePlace,
}

/// Filter on usage statistics; days are days since the Unix epoch (UTC), inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageFilter {
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
    pub handshake_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    pub handshake_code: String,
    pub feature: String,
    pub count: u64,
}

/// A signed-in portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// SHA-256 (hex) of the token in the cookie.
    pub token_hash: String,
    /// The anti-CSRF token every form of this session must carry.
    pub csrf: String,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: UnixSeconds,
    /// Who acted: `portal`, `api` or `cli`.
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Usage per UTC hour (hours since the epoch), handshake code and feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyUsage {
    pub hour: i64,
    pub handshake_code: String,
    pub feature: String,
    pub count: u64,
}

/// Usage per UTC hour, license item and feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHourlyUsage {
    pub hour: i64,
    pub item_id: String,
    pub feature: String,
    pub count: u64,
}

/// Authorization outcomes of one handshake code in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOutcomes {
    pub handshake_code: String,
    /// Unix time divided by 60.
    pub minute: i64,
    pub ok: u64,
    pub failed: u64,
}

/// The level last notified for one watched quantity (e.g. `item:L-1-1:usage`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlertLevel {
    pub key: String,
    pub level: u8,
}

/// Authorizations of one handshake code since a given time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutcomeTotals {
    pub handshake_code: String,
    pub ok: u64,
    pub failed: u64,
}

/// One alert of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub at: UnixSeconds,
    pub subject: String,
    pub body: String,
    /// What became of the email: `pending` until known.
    pub email: String,
    /// What became of the webhooks: `pending` until known.
    pub webhooks: String,
}

/// An alert to add to the history, with the deliveries to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub at: UnixSeconds,
    pub subject: String,
    pub body: String,
    /// What the history shows for the email until an attempt is made (e.g. `pending`).
    pub email: String,
    /// What the history shows for the webhooks until an attempt is made.
    pub webhooks: String,
    /// One per channel and target; each is due at `at`.
    pub deliveries: Vec<NewDelivery>,
}

/// How an alert is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryChannel {
    Email,
    Webhook,
}

impl DeliveryChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Email => "email",
            DeliveryChannel::Webhook => "webhook",
        }
    }

    /// The channel named `name` as stored, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "email" => Some(DeliveryChannel::Email),
            "webhook" => Some(DeliveryChannel::Webhook),
            _ => None,
        }
    }
}

/// One delivery of a new alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub channel: DeliveryChannel,
    /// The webhook URL; empty for the email (its recipients are read from the settings at each
    /// attempt, so that a corrected setting takes effect on the next retry).
    pub target: String,
    /// What is sent, as the server encodes it (the message, the event JSON).
    pub payload: String,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub alert_id: i64,
    /// When the alert was raised: retries stop a day later.
    pub raised_at: UnixSeconds,
    pub channel: DeliveryChannel,
    pub target: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_at`.
    Pending,
    Sent,
    /// Given up (a day passed without success).
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(DeliveryState::Pending),
            "sent" => Some(DeliveryState::Sent),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub at: UnixSeconds,
    /// `sent`, or why it failed.
    pub outcome: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered: no further attempt.
    Sent,
    /// Failed; try again at this time.
    RetryAt(UnixSeconds),
    /// Failed for the last time.
    GiveUp,
}

/// A delivery with every attempt made, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub alert_id: i64,
    pub channel: DeliveryChannel,
    pub target: String,
    pub state: DeliveryState,
    /// When the next attempt is due, while pending.
    pub next_at: Option<UnixSeconds>,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// Hourly usage summed into UTC days (hours floored with `div_euclid`, so days before the epoch
/// are right; sums saturate), ordered by day, code and feature: how every store answers
/// [`crate::Store::usage_by_day`].
pub fn daily_from_hourly(hours: Vec<HourlyUsage>) -> Vec<DailyUsage> {
    let mut days: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
    for h in hours {
        let total = days
            .entry((h.hour.div_euclid(24), h.handshake_code, h.feature))
            .or_default();
        *total = total.saturating_add(h.count);
    }
    days.into_iter()
        .map(|((day, handshake_code, feature), count)| DailyUsage {
            day,
            handshake_code,
            feature,
            count,
        })
        .collect()
}
