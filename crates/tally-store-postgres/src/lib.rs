//! The PostgreSQL store: for installations that outgrow one machine. Several `tally serve`
//! instances share one database; every quota decision is taken inside a transaction that holds
//! row locks on the license items it counts (`devices.rs`), so quotas stay exact across
//! connections and processes. Each write returns only after PostgreSQL committed it
//! (`synchronous_commit` on); concurrent commits are flushed together by PostgreSQL itself.

mod alerts;
mod connection;
mod deliveries;
mod devices;
mod handshakes;
mod import;
mod licenses;
mod listener;
mod migrate;
mod portal;
mod reports;
mod scratch;
mod session_windows;
mod shared;
mod usage;
mod writer;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tally_proto::UnixSeconds;
use tally_store::*;

pub use import::{ImportError, Importer};
pub use migrate::SCHEMA_VERSION;
pub use scratch::ScratchSchema;

/// A pool of connections to one PostgreSQL database; clones share the pool and the cache.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Handshake codes and organizations, kept right across instances by `listener.rs`.
    cache: std::sync::Arc<tally_store::cache::ReadCache>,
    /// Admissions and reports, committed in batches (`writer.rs`).
    writer: writer::Writer,
    /// The report-session windows this instance wrote last (`session_windows.rs`).
    windows: session_windows::Windows,
}

/// Times a transaction that PostgreSQL aborted to keep it apart from another one is run again.
const ATTEMPTS: u32 = 8;

/// Runs `$body` (which uses the transaction `$tx` and returns a `StoreResult`) in a transaction
/// on a pooled connection and commits it when the body succeeded. A transaction that lost a race
/// (deadlock, serialization failure, a unique key taken meanwhile) is run again from the start.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = connection::client(&$store.pool).await?;
            let outcome = async {
                let $tx = client
                    .transaction()
                    .await
                    .map_err(connection::backend("begin a transaction"))?;
                let value = $body?;
                $tx.commit()
                    .await
                    .map_err(connection::backend("commit"))?;
                Ok::<_, StoreError>(value)
            }
            .await;
            match outcome {
                Err(e) if attempt < ATTEMPTS && connection::lost_a_race(&e) => {
                    tracing::debug!(error = %e, attempt, "transaction lost a race; running it again");
                }
                other => break other,
            }
        }
    }};
}

/// Tells every instance, at commit, that handshake codes or organizations changed.
async fn notify(tx: &deadpool_postgres::Transaction<'_>) -> StoreResult<()> {
    tx.batch_execute(listener::NOTIFY)
        .await
        .map_err(connection::backend("notify the other instances"))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and applies
    /// migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let config = connection::parse_url(url)?;
        let pool = connection::pool(config.clone())?;
        let mut client = connection::client(&pool).await?;
        migrate::migrate(&mut client).await?;
        for setting in ["fsync", "synchronous_commit"] {
            let value: String = client
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(connection::backend("read the server's durability settings"))?;
            if value == "off" {
                tracing::warn!(
                    setting,
                    "PostgreSQL has {setting} = off: acknowledged writes can be lost in a crash"
                );
            }
        }
        drop(client);
        let cache = std::sync::Arc::new(tally_store::cache::ReadCache::default());
        // Off until the listener hears every change of the other instances.
        cache.set_off(true);
        listener::spawn(config, cache.clone());
        let writer = writer::Writer::start(pool.clone());
        let windows = session_windows::Windows::start(pool.clone());
        Ok(Self {
            pool,
            cache,
            writer,
            windows,
        })
    }

    /// After a write that may have changed handshake codes or organizations: this instance's
    /// cache is cleared at once (the others when the write's `NOTIFY` reaches them).
    fn cleared<T>(&self, outcome: StoreResult<T>) -> StoreResult<T> {
        self.cache.clear();
        outcome
    }

    async fn read(&self) -> StoreResult<deadpool_postgres::Object> {
        connection::client(&self.pool).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        licenses::get_setting(&self.read().await?, key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        licenses::put_setting(&self.read().await?, key, value).await
    }

    async fn import_license(&self, license: NewLicense) -> StoreResult<ImportOutcome> {
        let outcome = in_transaction!(self, |tx| {
            let imported = licenses::import(&tx, &license).await?;
            notify(&tx).await?;
            Ok::<_, StoreError>(imported)
        });
        self.cleared(outcome)
    }

    async fn licenses(&self) -> StoreResult<Vec<StoredLicense>> {
        licenses::list(&self.read().await?).await
    }

    async fn items(&self, now: UnixSeconds) -> StoreResult<Vec<StoredItem>> {
        licenses::items(&self.read().await?, now).await
    }

    async fn organization(&self, id: &str) -> StoreResult<Option<OrganizationRow>> {
        if let Some(row) = self.cache.organization(id) {
            return Ok(Some(row));
        }
        let seen = self.cache.generation();
        let row = handshakes::organization(&self.read().await?, id).await?;
        if let Some(r) = &row {
            self.cache.put_organization(seen, r);
        }
        Ok(row)
    }

    async fn create_handshake(&self, handshake: NewHandshake) -> StoreResult<()> {
        let outcome = in_transaction!(self, |tx| {
            handshakes::create(&tx, &handshake).await?;
            notify(&tx).await
        });
        self.cleared(outcome)
    }

    async fn handshake(&self, code: &str) -> StoreResult<Option<HandshakeRow>> {
        if let Some(row) = self.cache.handshake(code) {
            return Ok(Some(row));
        }
        let seen = self.cache.generation();
        let row = handshakes::get_code(&self.read().await?, code).await?;
        if let Some(r) = &row {
            self.cache.put_handshake(seen, r);
        }
        Ok(row)
    }

    async fn update_handshake(&self, code: &str, change: HandshakeChange) -> StoreResult<()> {
        let outcome = in_transaction!(self, |tx| {
            handshakes::update(&tx, code, &change).await?;
            notify(&tx).await
        });
        self.cleared(outcome)
    }

    async fn handshakes(&self) -> StoreResult<Vec<HandshakeRow>> {
        handshakes::list(&self.read().await?).await
    }

    async fn admit_device(&self, request: AdmitRequest) -> StoreResult<Admission> {
        self.writer.admit(request).await
    }

    async fn devices(&self) -> StoreResult<Vec<DeviceRow>> {
        devices::list(&self.read().await?, None).await
    }

    async fn recent_devices(&self, limit: u32, offset: u64) -> StoreResult<Vec<DeviceRow>> {
        devices::list(&self.read().await?, Some((limit, offset))).await
    }

    async fn device_count(&self) -> StoreResult<u64> {
        devices::count_all(&self.read().await?).await
    }

    async fn trial(
        &self,
        device_uuid: &str,
        now: UnixSeconds,
        length: i64,
    ) -> StoreResult<UnixSeconds> {
        in_transaction!(self, |tx| devices::trial(&tx, device_uuid, now, length)
            .await)
    }

    async fn record_reports(&self, batch: ReportBatch) -> StoreResult<ReportResult> {
        self.writer.report(batch).await
    }

    async fn usage_by_day(&self, filter: UsageFilter) -> StoreResult<Vec<DailyUsage>> {
        usage::by_day(&self.read().await?, &filter).await
    }

    async fn usage_by_hour(&self, filter: UsageFilter) -> StoreResult<Vec<HourlyUsage>> {
        usage::by_hour(&self.read().await?, &filter).await
    }

    async fn usage_by_item_hour(
        &self,
        filter: UsageFilter,
        item_id: Option<String>,
    ) -> StoreResult<Vec<ItemHourlyUsage>> {
        usage::by_item_hour(&self.read().await?, &filter, item_id.as_deref()).await
    }

    async fn unregister_device(&self, device_uuid: &str) -> StoreResult<u64> {
        in_transaction!(self, |tx| devices::unregister(&tx, device_uuid).await)
    }

    async fn create_session(&self, session: PortalSession) -> StoreResult<()> {
        in_transaction!(self, |tx| portal::create_session(&tx, &session).await)
    }

    async fn session(
        &self,
        token_hash: &str,
        now: UnixSeconds,
    ) -> StoreResult<Option<PortalSession>> {
        portal::session(&self.read().await?, token_hash, now).await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        portal::delete_session(&self.read().await?, Some(token_hash)).await
    }

    async fn delete_all_sessions(&self) -> StoreResult<()> {
        portal::delete_session(&self.read().await?, None).await
    }

    async fn record_audit(&self, entry: AuditEntry) -> StoreResult<()> {
        portal::record_audit(&self.read().await?, &entry).await
    }

    async fn record_auth_outcomes(&self, counts: Vec<AuthOutcomes>) -> StoreResult<()> {
        in_transaction!(self, |tx| alerts::record_outcomes(&tx, &counts).await)
    }

    async fn auth_outcomes(&self, since: UnixSeconds) -> StoreResult<Vec<OutcomeTotals>> {
        in_transaction!(self, |tx| alerts::outcomes(&tx, since).await)
    }

    async fn alert_levels(&self) -> StoreResult<Vec<AlertLevel>> {
        alerts::levels(&self.read().await?).await
    }

    async fn set_alert_levels(&self, levels: Vec<AlertLevel>) -> StoreResult<()> {
        in_transaction!(self, |tx| alerts::set_levels(&tx, &levels).await)
    }

    async fn record_alert(&self, alert: NewAlert) -> StoreResult<i64> {
        in_transaction!(self, |tx| deliveries::record_alert(&tx, &alert).await)
    }

    async fn set_alert_delivery(
        &self,
        id: i64,
        email: Option<&str>,
        webhooks: Option<&str>,
    ) -> StoreResult<()> {
        alerts::set_delivery(&self.read().await?, id, email, webhooks).await
    }

    async fn alerts(&self, limit: u32) -> StoreResult<Vec<AlertRow>> {
        alerts::list(&self.read().await?, limit).await
    }

    async fn claim_due_deliveries(
        &self,
        now: UnixSeconds,
        hold_until: UnixSeconds,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        deliveries::claim_due(&self.read().await?, now, hold_until, limit).await
    }

    async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: DeliveryAttempt,
        after: AfterAttempt,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| deliveries::record_attempt(
            &tx, id, &attempt, after
        )
        .await)
    }

    async fn alert_deliveries(&self, alert_ids: Vec<i64>) -> StoreResult<Vec<DeliveryRow>> {
        deliveries::of_alerts(&self.read().await?, &alert_ids).await
    }

    async fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        portal::audit_log(&self.read().await?, limit).await
    }

    /// Any number of instances may connect to the database.
    fn config_version(&self) -> Option<u64> {
        self.cache.version()
    }

    fn shared(&self) -> bool {
        true
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        in_transaction!(self, |tx| shared::setting_or_insert(&tx, key, value).await)
    }

    async fn hold_lease(
        &self,
        job: &str,
        holder: &str,
        now: UnixSeconds,
        until: UnixSeconds,
    ) -> StoreResult<bool> {
        shared::hold_lease(&self.read().await?, job, holder, now, until).await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        shared::release_lease(&self.read().await?, job, holder).await
    }

    async fn first_use(
        &self,
        id: &[u8],
        now: UnixSeconds,
        forget_after: UnixSeconds,
    ) -> StoreResult<bool> {
        shared::first_use(&self.read().await?, id, now, forget_after).await
    }

    async fn accept_session_message(
        &self,
        session: &[u8],
        seq: u64,
        expires_at: UnixSeconds,
    ) -> StoreResult<bool> {
        self.windows
            .accept(session_windows::WindowAsk {
                session: session.to_vec(),
                seq,
                expires_at,
            })
            .await
    }

    async fn sweep_expired(&self, now: UnixSeconds) -> StoreResult<u64> {
        shared::sweep_expired(&self.read().await?, now).await
    }
}
