//! The storage contract. The server talks to `Arc<dyn Store>`; each backend is its own crate
//! (`tally-store-sqlite`, later PostgreSQL) with its own migrations.
//!
//! Quota decisions are made *inside* the store's write transaction ([`Store::admit_device`]) by
//! the pure rules of `tally-core`, so that they hold under any concurrency.

pub mod cache;
pub mod copy;
mod model;

pub use model::*;

use async_trait::async_trait;

/// Errors every backend maps its own failures to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced object (organization, item, handshake code) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object exists already, or the write conflicts with existing data.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend failed (I/O, corruption, a bug). Logged and reported as an internal error.
    /// `cause` is the backend's own error, kept typed (see [`StoreError::cause`]); its text is
    /// part of this error's message, so that every log line and notice that shows the error shows
    /// why, and it is not repeated as a `source` in error chains.
    #[error("storage failure: {what}{}", cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    Backend {
        what: String,
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend failure caused by `cause`.
    pub fn backend(
        what: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Backend {
            what: what.into(),
            cause: Some(cause.into()),
        }
    }

    /// A backend failure with no underlying error (a broken invariant, a stopped thread).
    pub fn failure(what: impl Into<String>) -> Self {
        StoreError::Backend {
            what: what.into(),
            cause: None,
        }
    }

    /// The backend's own error behind a `Backend` failure, e.g. to look for a full disk.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Backend { cause, .. } => cause.as_deref(),
            _ => None,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server persists. Every method that returns `Ok` has made its writes durable.
///
/// Texts never hold a NUL character (PostgreSQL cannot store one): the server refuses control
/// characters in what it is sent, and the documents it stores are armored or JSON.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A small key/value table for server settings (e.g. the admin token hash).
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Stores an activated license, its items, its organization (created if missing, with a
    /// default handshake code named by `default_code`) and attaches the new items to that
    /// organization's default code, all in one transaction. Importing the same license again
    /// (`newly_imported = false`) keeps its items and replaces only the activated file (a new
    /// activation for this server); the same id with other content is a `Conflict`.
    async fn import_license(&self, license: NewLicense) -> StoreResult<ImportOutcome>;
    /// Every imported license, oldest first.
    async fn licenses(&self) -> StoreResult<Vec<StoredLicense>>;
    /// Every license item with its count of active devices at `now`.
    async fn items(&self, now: tally_proto::UnixSeconds) -> StoreResult<Vec<StoredItem>>;

    async fn organization(&self, id: &str) -> StoreResult<Option<OrganizationRow>>;

    /// Creates a handshake code. `NotFound` if the organization or an item is missing, `Conflict`
    /// if the code exists or an item belongs to another organization.
    async fn create_handshake(&self, handshake: NewHandshake) -> StoreResult<()>;
    /// A handshake code with its items in consumption order.
    async fn handshake(&self, code: &str) -> StoreResult<Option<HandshakeRow>>;
    /// Changes a handshake code. `NotFound` if it or a listed item is missing, `Conflict` if an
    /// item belongs to another organization.
    async fn update_handshake(&self, code: &str, change: HandshakeChange) -> StoreResult<()>;
    async fn handshakes(&self) -> StoreResult<Vec<HandshakeRow>>;

    /// Registers a device on the first candidate that can take it, per
    /// [`tally_core::admission::decide`], in one write transaction.
    async fn admit_device(&self, request: AdmitRequest) -> StoreResult<Admission>;
    async fn devices(&self) -> StoreResult<Vec<DeviceRow>>;
    /// One page of registrations, most recently seen first.
    async fn recent_devices(&self, limit: u32, offset: u64) -> StoreResult<Vec<DeviceRow>>;
    /// Registrations in all.
    async fn device_count(&self) -> StoreResult<u64>;

    /// Starts or continues the public trial of a device: the first call records a trial of
    /// `length` seconds; later calls return its end. Once ended, a trial never starts again.
    async fn trial(
        &self,
        device_uuid: &str,
        now: tally_proto::UnixSeconds,
        length: i64,
    ) -> StoreResult<tally_proto::UnixSeconds>;

    /// Records usage reports of a device that holds a live place on the code
    /// (`tally_core::reporting::holds_live_place`; otherwise nothing is written); a report id
    /// already recorded is skipped (exactly-once counting). A report is also a contact: it renews
    /// the device's seats and registrations on the code, and its counts are charged to the
    /// per-usage item the device holds there.
    async fn record_reports(&self, batch: ReportBatch) -> StoreResult<ReportResult>;
    /// Usage per UTC day, handshake code and feature.
    async fn usage_by_day(&self, filter: UsageFilter) -> StoreResult<Vec<DailyUsage>>;
    /// Usage per UTC hour, handshake code and feature (days of the filter, inclusive).
    async fn usage_by_hour(&self, filter: UsageFilter) -> StoreResult<Vec<HourlyUsage>>;

    /// Usage per UTC hour, item and feature over the filter's days; `item_id` narrows to one item
    /// (the filter's handshake code is ignored).
    async fn usage_by_item_hour(
        &self,
        filter: UsageFilter,
        item_id: Option<String>,
    ) -> StoreResult<Vec<ItemHourlyUsage>>;

    /// Frees every place a device holds (the admin unregistered it); returns how many.
    async fn unregister_device(&self, device_uuid: &str) -> StoreResult<u64>;

    /// Portal sessions: created at sign-in, looked up per request, deleted at sign-out. Expired
    /// sessions are never returned and are purged when a new one is created.
    async fn create_session(&self, session: PortalSession) -> StoreResult<()>;
    async fn session(
        &self,
        token_hash: &str,
        now: tally_proto::UnixSeconds,
    ) -> StoreResult<Option<PortalSession>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Signs every session out (after a password change).
    async fn delete_all_sessions(&self) -> StoreResult<()>;

    async fn record_audit(&self, entry: AuditEntry) -> StoreResult<()>;

    /// Adds authorization outcomes of existing handshake codes, gathered per minute by the
    /// server (one write for many authorizations).
    async fn record_auth_outcomes(&self, counts: Vec<AuthOutcomes>) -> StoreResult<()>;
    /// Authorizations per handshake code since `since`; older counts are deleted.
    async fn auth_outcomes(
        &self,
        since: tally_proto::UnixSeconds,
    ) -> StoreResult<Vec<OutcomeTotals>>;
    /// Levels last notified, by key.
    async fn alert_levels(&self) -> StoreResult<Vec<AlertLevel>>;
    async fn set_alert_levels(&self, levels: Vec<AlertLevel>) -> StoreResult<()>;
    /// Adds an alert to the history with its deliveries, each pending and due at the alert's
    /// time, in one transaction; returns the alert's id.
    async fn record_alert(&self, alert: NewAlert) -> StoreResult<i64>;
    /// Sets what the history shows for the alert's email and webhooks; `None` keeps the text.
    async fn set_alert_delivery(
        &self,
        id: i64,
        email: Option<&str>,
        webhooks: Option<&str>,
    ) -> StoreResult<()>;
    /// Claims up to `limit` pending deliveries due at `now`, earliest due first, by moving their
    /// next attempt to `hold_until`: no other caller (another instance sharing the store) claims
    /// them meanwhile, and one whose claimer died is due again then.
    async fn claim_due_deliveries(
        &self,
        now: tally_proto::UnixSeconds,
        hold_until: tally_proto::UnixSeconds,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records an attempt at delivery `id` and what follows it; `NotFound` for an unknown id.
    async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()>;
    /// The deliveries of these alerts with their attempts, by alert and then in the order they
    /// were recorded.
    async fn alert_deliveries(&self, alert_ids: Vec<i64>) -> StoreResult<Vec<DeliveryRow>>;
    /// The newest `limit` alerts, newest first.
    async fn alerts(&self, limit: u32) -> StoreResult<Vec<AlertRow>>;
    /// The newest `limit` entries, newest first.
    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// A number that changes whenever licenses, handshake codes or organizations may have
    /// changed (by this process or, in a shared store, by another instance), so that what a
    /// server derives from them can be kept until then; `None` when the store cannot tell (then
    /// read them again).
    fn config_version(&self) -> Option<u64>;

    /// Whether several server instances share this store: the state that keeps requests from
    /// being replayed must then live in it (see [`Store::first_use`]), not in one process.
    fn shared(&self) -> bool;

    /// Stores `value` under `key` unless the key has a value; returns the value kept, the same
    /// for every caller however many race (e.g. a secret the instances share).
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Takes or keeps the lease `job` for `holder` until `until`: true when `holder` now holds
    /// it (it was free, had expired at `now`, or was `holder`'s already). A background job that
    /// must run once across instances runs only while its instance holds the lease.
    async fn hold_lease(
        &self,
        job: &str,
        holder: &str,
        now: tally_proto::UnixSeconds,
        until: tally_proto::UnixSeconds,
    ) -> StoreResult<bool>;
    /// Gives the lease up, if `holder` holds it.
    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()>;

    /// Records the one use of a request envelope (`id`, at most 32 bytes) until `forget_after`;
    /// false when it was recorded before and has not been forgotten.
    async fn first_use(
        &self,
        id: &[u8],
        now: tally_proto::UnixSeconds,
        forget_after: tally_proto::UnixSeconds,
    ) -> StoreResult<bool>;
    /// Accepts message `seq` of report session `session` once, per
    /// [`tally_core::replay_window::accept`]; the session is forgotten after `expires_at`.
    async fn accept_session_message(
        &self,
        session: &[u8],
        seq: u64,
        expires_at: tally_proto::UnixSeconds,
    ) -> StoreResult<bool>;
    /// Forgets envelopes, session windows and leases that expired by `now`; returns how many.
    async fn sweep_expired(&self, now: tally_proto::UnixSeconds) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_says_why_and_keeps_the_typed_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let e = StoreError::backend("insert report", io);
        assert_eq!(e.to_string(), "storage failure: insert report: disk full");
        let cause = e.cause().and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(std::io::Error::kind),
            Some(std::io::ErrorKind::StorageFull)
        );
        assert_eq!(
            StoreError::failure("the writer thread has stopped").to_string(),
            "storage failure: the writer thread has stopped"
        );
    }
}
