//! The client: its construction, identity and status. Authorization is in `authorize.rs`,
//! usage in `report.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally_core::{Clock, SystemClock};
use tally_crypto::VerifyingKey;
use tally_proto::{ErrorCode, UnixSeconds};

use crate::background::Background;
use crate::config::Config;
use crate::error::{SdkError, SdkResult};
use crate::state::{StateDir, USAGE};
use crate::transport::Transport;
use crate::usage::UsageBook;

/// A Tally client for one product on one device. It is `Send + Sync`: share it in an [`Arc`];
/// calls touching local state are serialized, across processes too.
pub struct Client {
    pub(crate) config: Config,
    pub(crate) vendor: VerifyingKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) transport: Transport,
    pub(crate) state: StateDir,
    pub(crate) device_uuid: String,
    /// One flush at a time, without blocking `record_usage` while reports travel.
    pub(crate) flushing: Mutex<()>,
    /// The held grant as last verified, so that frequent checks do not verify signatures again.
    pub(crate) verified: Mutex<Option<(crate::authorize::CachedGrant, tally_proto::wire::Grant)>>,
}

/// A summary of the cached grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    pub server_uuid: String,
    pub handshake_code: String,
    /// Ids of the granted license items.
    pub items: Vec<String>,
    pub issued_at: UnixSeconds,
    /// The grant may be used until then, with or without a server.
    pub valid_until: UnixSeconds,
    /// The background thread renews it from then on.
    pub renew_at: UnixSeconds,
    /// The concurrent seat's end, for seat licenses.
    pub seat_until: Option<UnixSeconds>,
    /// The end of the licenses' grace after their end.
    pub grace_end: UnixSeconds,
}

/// What [`Client::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub device_uuid: String,
    /// The cached grant, when there is one and it still verifies (it may have expired).
    pub grant: Option<GrantSummary>,
    /// Reports waiting for a server, counting the current slice's counters as one.
    pub pending_reports: usize,
    /// Slice index of the counters not yet closed into a report.
    pub open_slice: Option<i64>,
    /// Those counters, per feature.
    pub open_slice_counts: BTreeMap<String, u64>,
}

impl Client {
    /// A client on the system clock. Checks `config`, creates the state directory and the
    /// device id; no server is contacted.
    pub fn new(config: Config) -> SdkResult<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client on the given clock (tests move a `tally_core::ManualClock` by hand).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> SdkResult<Self> {
        let vendor = config.validate()?;
        let state = StateDir::open(&config.state_dir)?;
        let device_uuid = {
            let lock = state.lock()?;
            crate::device::device_uuid(config.device_id, &config.vendor_public_key, &lock)?
        };
        let transport = Transport::new(config.timeout);
        Ok(Self {
            config,
            vendor,
            clock,
            transport,
            state,
            device_uuid,
            flushing: Mutex::new(()),
            verified: Mutex::new(None),
        })
    }

    /// The UUID servers know this device by.
    pub fn device_uuid(&self) -> &str {
        &self.device_uuid
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Device id, cached grant and unsent usage, from local state only.
    pub fn status(&self) -> SdkResult<Status> {
        let lock = self.state.lock()?;
        let book: UsageBook = lock.read(USAGE)?.unwrap_or_default();
        let grant = self.cached_grant(&lock)?.and_then(|verified| {
            verified
                .map_err(|e| tracing::warn!(error = %e, "the cached grant does not verify"))
                .ok()
        });
        Ok(Status {
            device_uuid: self.device_uuid.clone(),
            grant: grant.map(|g| GrantSummary {
                server_uuid: g.server_uuid,
                handshake_code: g.handshake_code,
                grace_end: g
                    .items
                    .iter()
                    .map(|i| i.grace_end)
                    .max()
                    .unwrap_or(g.valid_until),
                items: g.items.into_iter().map(|i| i.item_id).collect(),
                issued_at: g.issued_at,
                valid_until: g.valid_until,
                renew_at: g.renew_at,
                seat_until: g.seat_until,
            }),
            pending_reports: book.waiting(),
            open_slice: book.open.as_ref().map(|o| o.slice),
            open_slice_counts: book.open.map(|o| o.counts).unwrap_or_default(),
        })
    }

    /// Starts the background thread (see [`Background`]): it renews the grant before it lapses
    /// and sends usage reports now and then every `report_every` (see
    /// [`crate::DEFAULT_REPORT_INTERVAL`]), until the returned handle is dropped.
    pub fn spawn_background(self: &Arc<Self>, report_every: Duration) -> SdkResult<Background> {
        self.spawn_background_polling(report_every, Duration::from_secs(1))
    }

    /// [`Client::spawn_background`] looking at the clock every `poll` (tests on a manual clock).
    #[doc(hidden)]
    pub fn spawn_background_polling(
        self: &Arc<Self>,
        report_every: Duration,
        poll: Duration,
    ) -> SdkResult<Background> {
        Background::spawn(self.clone(), report_every, poll).map_err(|e| {
            SdkError::new(
                ErrorCode::Internal,
                format!("cannot start the background thread: {e}"),
            )
        })
    }

    /// When the held grant should be renewed, read without verifying it (a wrong value only
    /// moves a renewal); `None` without a grant.
    pub(crate) fn renew_at(&self) -> Option<UnixSeconds> {
        let lock = self.state.lock().ok()?;
        let cache: crate::authorize::CachedGrant = lock.read(crate::state::GRANT).ok().flatten()?;
        let payload = tally_crypto::b64_decode(&cache.grant.payload).ok()?;
        let grant: tally_proto::wire::Grant = serde_json::from_slice(&payload).ok()?;
        Some(grant.renew_at)
    }
}
