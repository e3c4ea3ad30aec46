//! The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so every
//! acknowledged write survives a crash or power loss.
//!
//! All writes run on one dedicated writer thread, in order. That serializes quota decisions
//! (`admit_device` runs in one `BEGIN IMMEDIATE` transaction) without lock contention; reads use
//! their own connections and never wait for the writer.

mod alerts;
mod backup;
mod connection;
mod deliveries;
mod devices;
mod export;
mod handshakes;
mod licenses;
mod migrate;
mod places;
mod portal;
mod savepoint;
pub mod seed;
mod shared;
mod usage;
mod writer;

use std::path::Path;

use async_trait::async_trait;
use tally_proto::UnixSeconds;
use tally_store::*;

pub use backup::{BackupError, CheckedDatabase, backup_database, check_database};
pub use connection::SqliteStore;
pub use export::{EXPORT_CHUNK_ROWS, ExportError, export};
pub use migrate::SCHEMA_VERSION;
use writer::CommitSpacing;

/// Wraps a rusqlite error as a backend failure saying what was being done.
pub(crate) fn backend(context: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::backend(context, e)
}

/// A JSON column that cannot be parsed means the database was damaged or written by a bug.
pub(crate) fn corrupt(context: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::backend(format!("damaged row ({context})"), e)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        connection::open(path)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| licenses::get_setting(c, &key)).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| licenses::put_setting(c, &key, &value))
            .await
    }

    async fn import_license(&self, license: NewLicense) -> StoreResult<ImportOutcome> {
        let outcome = self.write(move |c| licenses::import(c, &license)).await;
        self.cache().clear();
        outcome
    }

    async fn licenses(&self) -> StoreResult<Vec<StoredLicense>> {
        self.read(licenses::list).await
    }

    async fn items(&self, now: UnixSeconds) -> StoreResult<Vec<StoredItem>> {
        self.read(move |c| licenses::items(c, now)).await
    }

    async fn organization(&self, id: &str) -> StoreResult<Option<OrganizationRow>> {
        if let Some(row) = self.cache().organization(id) {
            return Ok(Some(row));
        }
        let seen = self.cache().generation();
        let id = id.to_owned();
        let row = self.read(move |c| handshakes::organization(c, &id)).await?;
        if let Some(r) = &row {
            self.cache().put_organization(seen, r);
        }
        Ok(row)
    }

    async fn create_handshake(&self, handshake: NewHandshake) -> StoreResult<()> {
        let outcome = self.write(move |c| handshakes::create(c, &handshake)).await;
        self.cache().clear();
        outcome
    }

    async fn handshake(&self, code: &str) -> StoreResult<Option<HandshakeRow>> {
        if let Some(row) = self.cache().handshake(code) {
            return Ok(Some(row));
        }
        let seen = self.cache().generation();
        let code = code.to_owned();
        let row = self.read(move |c| handshakes::get(c, &code)).await?;
        if let Some(r) = &row {
            self.cache().put_handshake(seen, r);
        }
        Ok(row)
    }

    async fn update_handshake(&self, code: &str, change: HandshakeChange) -> StoreResult<()> {
        let code = code.to_owned();
        let outcome = self
            .write(move |c| handshakes::update(c, &code, &change))
            .await;
        self.cache().clear();
        outcome
    }

    async fn handshakes(&self) -> StoreResult<Vec<HandshakeRow>> {
        self.read(handshakes::list).await
    }

    async fn admit_device(&self, request: AdmitRequest) -> StoreResult<Admission> {
        self.write_spaced(CommitSpacing::ADMISSION, move |c| {
            devices::admit(c, &request)
        })
        .await
    }

    async fn devices(&self) -> StoreResult<Vec<DeviceRow>> {
        self.read(|c| devices::list(c, None)).await
    }

    async fn recent_devices(&self, limit: u32, offset: u64) -> StoreResult<Vec<DeviceRow>> {
        self.read(move |c| devices::list(c, Some((limit, offset))))
            .await
    }

    async fn device_count(&self) -> StoreResult<u64> {
        self.read(devices::count_all).await
    }

    async fn trial(
        &self,
        device_uuid: &str,
        now: UnixSeconds,
        length: i64,
    ) -> StoreResult<UnixSeconds> {
        let device = device_uuid.to_owned();
        self.write(move |c| devices::trial(c, &device, now, length))
            .await
    }

    async fn record_reports(&self, batch: ReportBatch) -> StoreResult<ReportResult> {
        self.write(move |c| usage::record(c, &batch)).await
    }

    async fn usage_by_day(&self, filter: UsageFilter) -> StoreResult<Vec<DailyUsage>> {
        self.read(move |c| usage::by_day(c, &filter)).await
    }

    async fn usage_by_hour(&self, filter: UsageFilter) -> StoreResult<Vec<HourlyUsage>> {
        self.read(move |c| usage::by_hour(c, &filter)).await
    }

    async fn usage_by_item_hour(
        &self,
        filter: UsageFilter,
        item_id: Option<String>,
    ) -> StoreResult<Vec<ItemHourlyUsage>> {
        self.read(move |c| usage::by_item_hour(c, &filter, item_id.as_deref()))
            .await
    }

    async fn unregister_device(&self, device_uuid: &str) -> StoreResult<u64> {
        let device = device_uuid.to_owned();
        self.write(move |c| devices::unregister(c, &device)).await
    }

    async fn create_session(&self, session: PortalSession) -> StoreResult<()> {
        self.write(move |c| portal::create_session(c, &session))
            .await
    }

    async fn session(
        &self,
        token_hash: &str,
        now: UnixSeconds,
    ) -> StoreResult<Option<PortalSession>> {
        let hash = token_hash.to_owned();
        self.read(move |c| portal::session(c, &hash, now)).await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let hash = token_hash.to_owned();
        self.write(move |c| portal::delete_session(c, Some(&hash)))
            .await
    }

    async fn delete_all_sessions(&self) -> StoreResult<()> {
        self.write(|c| portal::delete_session(c, None)).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |c| portal::record_audit(c, &entry)).await
    }

    async fn record_auth_outcomes(&self, counts: Vec<AuthOutcomes>) -> StoreResult<()> {
        self.write(move |c| alerts::record_outcomes(c, &counts))
            .await
    }

    async fn auth_outcomes(&self, since: UnixSeconds) -> StoreResult<Vec<OutcomeTotals>> {
        self.write(move |c| alerts::outcomes(c, since)).await
    }

    async fn alert_levels(&self) -> StoreResult<Vec<AlertLevel>> {
        self.read(alerts::levels).await
    }

    async fn set_alert_levels(&self, levels: Vec<AlertLevel>) -> StoreResult<()> {
        self.write(move |c| alerts::set_levels(c, &levels)).await
    }

    async fn record_alert(&self, alert: NewAlert) -> StoreResult<i64> {
        self.write(move |c| deliveries::record_alert(c, &alert))
            .await
    }

    async fn set_alert_delivery(
        &self,
        id: i64,
        email: Option<&str>,
        webhooks: Option<&str>,
    ) -> StoreResult<()> {
        let (email, webhooks) = (email.map(str::to_owned), webhooks.map(str::to_owned));
        self.write(move |c| alerts::set_delivery(c, id, email.as_deref(), webhooks.as_deref()))
            .await
    }

    async fn alerts(&self, limit: u32) -> StoreResult<Vec<AlertRow>> {
        self.read(move |c| alerts::list(c, limit)).await
    }

    async fn claim_due_deliveries(
        &self,
        now: UnixSeconds,
        hold_until: UnixSeconds,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        self.write(move |c| deliveries::claim_due(c, now, hold_until, limit))
            .await
    }

    async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()> {
        self.write(move |c| deliveries::record_attempt(c, id, &attempt, after))
            .await
    }

    async fn alert_deliveries(&self, alert_ids: Vec<i64>) -> StoreResult<Vec<DeliveryRow>> {
        self.read(move |c| deliveries::of_alerts(c, &alert_ids))
            .await
    }

    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |c| portal::audit_log(c, limit)).await
    }

    /// One server per data directory (its lock): never shared.
    fn config_version(&self) -> Option<u64> {
        self.cache().version()
    }

    fn shared(&self) -> bool {
        false
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| shared::setting_or_insert(c, &key, &value))
            .await
    }

    async fn hold_lease(
        &self,
        job: &str,
        holder: &str,
        now: UnixSeconds,
        until: UnixSeconds,
    ) -> StoreResult<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |c| shared::hold_lease(c, &job, &holder, now, until))
            .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |c| shared::release_lease(c, &job, &holder))
            .await
    }

    async fn first_use(
        &self,
        id: &[u8],
        now: UnixSeconds,
        forget_after: UnixSeconds,
    ) -> StoreResult<bool> {
        let id = id.to_vec();
        self.write(move |c| shared::first_use(c, &id, now, forget_after))
            .await
    }

    async fn accept_session_message(
        &self,
        session: &[u8],
        seq: u64,
        expires_at: UnixSeconds,
    ) -> StoreResult<bool> {
        let session = session.to_vec();
        self.write(move |c| shared::accept_session_message(c, &session, seq, expires_at))
            .await
    }

    async fn sweep_expired(&self, now: UnixSeconds) -> StoreResult<u64> {
        self.write(move |c| shared::sweep_expired(c, now)).await
    }
}
