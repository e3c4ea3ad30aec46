//! The client: authorization with offline fallback, usage recording and report delivery.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tally_core::{Clock, SystemClock};
use tally_crypto::VerifyingKey;
use tally_crypto::keys::EncryptionPublicKey;
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Grant, MAX_REPORTS_PER_REQUEST, PATH_AUTHORIZE,
    PATH_REPORT, ReportRequest, ReportResponse, RequestStamp, SignedGrant,
};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::config::{Config, DeviceIdMode};
use crate::error::{SdkError, SdkResult};
use crate::files::{read_json, write_atomic, write_json};
use crate::transport::{CallError, Transport};
use crate::usage::UsageBook;
use crate::verify;

/// Clock differences smaller than this are not treated as a rollback.
const ROLLBACK_TOLERANCE_SECONDS: i64 = 300;

/// The result of [`Client::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub grant: Grant,
    /// True when no server answered and the cached grant was used.
    pub cached: bool,
    /// `Some(CachedGrantUsed)` when cached: a success the host application may want to show.
    pub warning: Option<ErrorCode>,
}

/// The result of [`Client::flush`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Reports sent in this call.
    pub sent: usize,
    /// Reports the server counted now or had counted before.
    pub acknowledged: usize,
    /// Of those, reports the server had already counted (a retry after a lost answer).
    pub duplicates: usize,
    /// Reports still waiting for a server.
    pub pending: usize,
    /// Reports dropped because they were older than 30 days.
    pub expired: usize,
}

/// A summary of the cached grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    pub handshake_code: String,
    pub items: Vec<String>,
    pub issued_at: UnixSeconds,
    pub valid_until: UnixSeconds,
}

/// What [`Client::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub device_uuid: String,
    pub grant: Option<GrantSummary>,
    pub pending_reports: usize,
    pub open_slice_counts: std::collections::BTreeMap<String, u64>,
}

/// The last verified grant with the proof needed to verify it again offline.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedGrant {
    grant: SignedGrant,
    certificates: Vec<String>,
    server: ServerPublicIdentity,
}

/// The highest clock reading seen, to detect a clock moved back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ClockMark {
    high_water: UnixSeconds,
}

/// A server that proved its identity in this call.
struct TrustedServer {
    base: String,
    identity: ServerPublicIdentity,
    encryption_key: EncryptionPublicKey,
    /// server time − local time, applied to request timestamps.
    offset: i64,
}

/// A Tally client. It is `Send + Sync`; calls from several threads are serialized where they
/// touch local state.
pub struct Client {
    config: Config,
    vendor: VerifyingKey,
    clock: Arc<dyn Clock>,
    transport: Transport,
    device_uuid: String,
    usage: Mutex<()>,
}

impl Client {
    /// A client on the system clock.
    pub fn new(config: Config) -> SdkResult<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client on the given clock (tests move it by hand).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> SdkResult<Self> {
        let vendor = config.validate()?;
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            SdkError::storage(&format!("cannot create {}", config.state_dir.display()), e)
        })?;
        let device_uuid = device_uuid(&config)?;
        let transport = Transport::new(config.timeout);
        Ok(Self {
            config,
            vendor,
            clock,
            transport,
            device_uuid,
            usage: Mutex::new(()),
        })
    }

    pub fn device_uuid(&self) -> &str {
        &self.device_uuid
    }

    fn path(&self, name: &str) -> PathBuf {
        self.config.state_dir.join(name)
    }

    /// Asks the servers in order for a grant; when none answers, falls back to the cached grant.
    /// A refusal by a server is returned as is and never replaced by the cache.
    pub fn authorize(&self) -> SdkResult<Authorization> {
        let now = self.clock.now();
        let mut last_problem = String::from("no server configured");
        let mut untrusted = None;
        for base in &self.config.servers {
            let outcome = self
                .trust(base)
                .and_then(|server| self.authorize_with(&server, now));
            match outcome {
                Ok(auth) => return Ok(auth),
                Err(CallError::Unreachable(m)) => last_problem = m,
                Err(CallError::Untrusted(m)) => untrusted = Some(m),
                Err(CallError::Refused(e)) => return Err(SdkError::from_server(&e)),
            }
        }
        tracing::warn!(problem = %last_problem, "no server answered; trying the cached grant");
        match (self.cached(now, &last_problem), untrusted) {
            (Err(e), Some(m)) if e.code == ErrorCode::ServerUnreachable => {
                Err(SdkError::new(ErrorCode::ServerNotTrusted, m))
            }
            (result, _) => result,
        }
    }

    /// Fetches the hello of `base` and checks the vendor vouches for its keys.
    fn trust(&self, base: &str) -> Result<TrustedServer, CallError> {
        let hello = self.transport.hello(base)?;
        let identity = ServerPublicIdentity {
            uuid: hello.uuid.clone(),
            signing_key: hello.signing_key.clone(),
            encryption_key: hello.encryption_key.clone(),
        };
        if verify::certified(&self.vendor, &identity, &hello.certificates).is_empty() {
            return Err(CallError::Untrusted(format!(
                "{base}: the server shows no license activated for it by the vendor"
            )));
        }
        let encryption_key = EncryptionPublicKey::from_base64(&identity.encryption_key)
            .map_err(|e| CallError::Unreachable(format!("{base}: {e}")))?;
        Ok(TrustedServer {
            base: base.to_owned(),
            identity,
            encryption_key,
            offset: hello.server_time - self.clock.now(),
        })
    }

    /// Sends a sealed request; on a stale-timestamp refusal, corrects the offset and retries once.
    fn call<Resp: serde::de::DeserializeOwned, Req: Serialize>(
        &self,
        server: &mut TrustedServer,
        path: &str,
        purpose: &str,
        build: impl Fn(RequestStamp) -> Req,
    ) -> Result<Resp, CallError> {
        for attempt in 0..2 {
            let stamp = RequestStamp {
                request_id: tally_crypto::random_id()
                    .map_err(|e| CallError::Unreachable(e.to_string()))?,
                sent_at: self.clock.now() + server.offset,
            };
            match self.transport.sealed(
                &server.base,
                path,
                purpose,
                &server.encryption_key,
                &build(stamp),
            ) {
                Err(CallError::Refused(e))
                    if attempt == 0 && e.error_code() == Some(ErrorCode::StaleRequest) =>
                {
                    match e.server_time {
                        Some(t) => server.offset = t - self.clock.now(),
                        None => return Err(CallError::Refused(e)),
                    }
                }
                other => return other,
            }
        }
        Err(CallError::Unreachable(format!(
            "{}: the clocks could not be agreed",
            server.base
        )))
    }

    fn authorize_with(
        &self,
        server: &TrustedServer,
        now: UnixSeconds,
    ) -> Result<Authorization, CallError> {
        let mut server = TrustedServer {
            base: server.base.clone(),
            identity: server.identity.clone(),
            encryption_key: server.encryption_key.clone(),
            offset: server.offset,
        };
        let c = &self.config;
        let response: AuthorizeResponse =
            self.call(&mut server, PATH_AUTHORIZE, "authorize", |stamp| {
                AuthorizeRequest {
                    stamp,
                    organization: c.organization.clone(),
                    handshake_code: c.handshake_code.clone(),
                    session_password: c.session_password.clone(),
                    device_uuid: self.device_uuid.clone(),
                    product: c.product.clone(),
                    version: c.version,
                    modules: c.modules.clone(),
                    validation: c.validation.clone(),
                    friendly_name: c.friendly_name.clone(),
                    buffer_days: Some(c.buffer_days),
                    instances: c.instances,
                }
            })?;
        let grant = verify::grant(
            &self.vendor,
            &server.identity,
            &response.certificates,
            &response.grant,
            &self.device_uuid,
        )
        .map_err(|e| CallError::Refused(tally_proto::ErrorBody::new(e.code, e.message)))?;
        let cache = CachedGrant {
            grant: response.grant,
            certificates: response.certificates,
            server: server.identity,
        };
        let stored = write_json(&self.path("grant.json"), &cache)
            .and_then(|()| write_json(&self.path("clock.json"), &ClockMark { high_water: now }));
        if let Err(e) = stored {
            return Err(CallError::Refused(tally_proto::ErrorBody::new(
                e.code, e.message,
            )));
        }
        Ok(Authorization {
            grant,
            cached: false,
            warning: None,
        })
    }

    /// The offline path: the cached grant, verified again, within its validity and the clock sane.
    fn cached(&self, now: UnixSeconds, problem: &str) -> SdkResult<Authorization> {
        let Some(cache) = read_json::<CachedGrant>(&self.path("grant.json"))? else {
            return Err(SdkError::new(
                ErrorCode::ServerUnreachable,
                format!("no server answered ({problem}) and no grant is cached"),
            ));
        };
        let grant = verify::grant(
            &self.vendor,
            &cache.server,
            &cache.certificates,
            &cache.grant,
            &self.device_uuid,
        )?;
        let mark = self.observe_clock(now)?;
        if now + ROLLBACK_TOLERANCE_SECONDS < mark.max(grant.issued_at) {
            return Err(SdkError::new(
                ErrorCode::ClockRollback,
                format!(
                    "the device clock reads {now}, before {} already seen",
                    mark.max(grant.issued_at)
                ),
            ));
        }
        if now >= grant.valid_until {
            return Err(SdkError::new(
                ErrorCode::GrantExpired,
                format!("the cached grant expired at {}", grant.valid_until),
            ));
        }
        Ok(Authorization {
            grant,
            cached: true,
            warning: Some(ErrorCode::CachedGrantUsed),
        })
    }

    /// Records `now` in the clock mark and returns the mark as it was before.
    fn observe_clock(&self, now: UnixSeconds) -> SdkResult<UnixSeconds> {
        let path = self.path("clock.json");
        let mark = read_json::<ClockMark>(&path)?.unwrap_or_default();
        if now > mark.high_water {
            write_json(&path, &ClockMark { high_water: now })?;
        }
        Ok(mark.high_water)
    }

    fn load_usage(&self) -> SdkResult<UsageBook> {
        Ok(read_json(&self.path("usage.json"))?.unwrap_or_default())
    }

    fn save_usage(&self, book: &UsageBook) -> SdkResult<()> {
        write_json(&self.path("usage.json"), book)
    }

    /// Counts `count` uses of `feature` in the current slice, durably before returning.
    pub fn record_usage(&self, feature: &str, count: u64) -> SdkResult<()> {
        let valid = !feature.is_empty()
            && feature.len() <= tally_proto::wire::MAX_FEATURE_LEN
            && feature.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(SdkError::new(
                ErrorCode::BadRequest,
                format!(
                    "feature `{}`: use 1 to 128 printable ASCII characters without spaces",
                    feature.escape_default()
                ),
            ));
        }
        let _guard = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        self.observe_clock(now)?;
        let mut book = self.load_usage()?;
        book.record(now, feature, count);
        self.save_usage(&book)
    }

    /// Sends every unsent report. Reports the server acknowledges are removed; the others stay
    /// for the next call. Fails with `ServerUnreachable` (reports kept) when no server answers.
    pub fn flush(&self) -> SdkResult<FlushOutcome> {
        let _guard = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let mut book = self.load_usage()?;
        book.close_open();
        let expired = book.expire(now);
        self.save_usage(&book)?;
        let mut outcome = FlushOutcome {
            expired,
            pending: book.pending.len(),
            ..Default::default()
        };
        if book.pending.is_empty() {
            return Ok(outcome);
        }
        let handshake_code = self.report_code()?;
        let mut last_problem = String::from("no server configured");
        for base in &self.config.servers {
            let mut server = match self.trust(base) {
                Ok(s) => s,
                Err(CallError::Unreachable(m) | CallError::Untrusted(m)) => {
                    last_problem = m;
                    continue;
                }
                Err(CallError::Refused(e)) => return Err(SdkError::from_server(&e)),
            };
            let chunks: Vec<_> = book
                .pending
                .chunks(MAX_REPORTS_PER_REQUEST)
                .map(<[_]>::to_vec)
                .collect();
            for chunk in chunks {
                let sent = chunk.len();
                let reply: Result<ReportResponse, _> =
                    self.call(&mut server, PATH_REPORT, "report", |stamp| ReportRequest {
                        stamp,
                        device_uuid: self.device_uuid.clone(),
                        organization: self.config.organization.clone(),
                        handshake_code: handshake_code.clone(),
                        reports: chunk.clone(),
                    });
                match reply {
                    Ok(r) => {
                        outcome.sent += sent;
                        outcome.acknowledged += r.accepted.len() + r.duplicates.len();
                        outcome.duplicates += r.duplicates.len();
                        book.acknowledge(&r.accepted);
                        book.acknowledge(&r.duplicates);
                        self.save_usage(&book)?;
                    }
                    Err(CallError::Refused(e)) => return Err(SdkError::from_server(&e)),
                    Err(CallError::Unreachable(m) | CallError::Untrusted(m)) => {
                        last_problem = m;
                        break;
                    }
                }
            }
            if outcome.sent > 0 {
                outcome.pending = book.pending.len();
                return Ok(outcome);
            }
        }
        Err(SdkError::new(
            ErrorCode::ServerUnreachable,
            format!(
                "no server answered ({last_problem}); {} reports kept for later",
                book.pending.len()
            ),
        ))
    }

    /// Reports name the handshake code: the configured one, else the one the last grant was for.
    fn report_code(&self) -> SdkResult<String> {
        if !self.config.handshake_code.is_empty() {
            return Ok(self.config.handshake_code.clone());
        }
        match read_json::<CachedGrant>(&self.path("grant.json"))? {
            Some(cache) => {
                let server_key = VerifyingKey::from_base64(&cache.server.signing_key)
                    .map_err(|e| SdkError::new(ErrorCode::GrantInvalid, e.to_string()))?;
                let grant = tally_crypto::grant::verify_grant(&cache.grant, &server_key)
                    .map_err(|e| SdkError::new(ErrorCode::GrantInvalid, e.to_string()))?;
                Ok(grant.handshake_code)
            }
            None => Err(SdkError::new(
                ErrorCode::NoGrant,
                "authorize once before sending usage reports",
            )),
        }
    }

    /// Starts a thread that sends reports now and then every `every` (see
    /// [`crate::DEFAULT_REPORT_INTERVAL`]) until the returned handle is dropped.
    pub fn spawn_reporter(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> SdkResult<crate::Reporter> {
        crate::Reporter::spawn(self.clone(), every).map_err(|e| {
            SdkError::new(
                ErrorCode::Internal,
                format!("cannot start the reporter: {e}"),
            )
        })
    }

    /// Device id, cached grant and unsent usage.
    pub fn status(&self) -> SdkResult<Status> {
        let book = self.load_usage()?;
        let grant = match read_json::<CachedGrant>(&self.path("grant.json"))? {
            Some(cache) => verify::grant(
                &self.vendor,
                &cache.server,
                &cache.certificates,
                &cache.grant,
                &self.device_uuid,
            )
            .ok()
            .map(|g| GrantSummary {
                handshake_code: g.handshake_code,
                items: g.items.into_iter().map(|i| i.item_id).collect(),
                issued_at: g.issued_at,
                valid_until: g.valid_until,
            }),
            None => None,
        };
        Ok(Status {
            device_uuid: self.device_uuid.clone(),
            grant,
            pending_reports: book.pending.len()
                + usize::from(book.open.as_ref().is_some_and(|o| !o.counts.is_empty())),
            open_slice_counts: book.open.map(|o| o.counts).unwrap_or_default(),
        })
    }
}

/// The device UUID: random once and kept, or derived from the machine id.
fn device_uuid(config: &Config) -> SdkResult<String> {
    match config.device_id {
        DeviceIdMode::Hardware => {
            let id = machine_uid::get()
                .map_err(|e| SdkError::storage("cannot read the machine id", e))?;
            let digest = tally_crypto::sha256(format!("tally-device/1\n{id}").as_bytes());
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            Ok(uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .to_string())
        }
        DeviceIdMode::Random => {
            let path = config.state_dir.join("device-id");
            match std::fs::read_to_string(&path) {
                Ok(text) if uuid::Uuid::parse_str(text.trim()).is_ok() => {
                    Ok(text.trim().to_owned())
                }
                Ok(_) => Err(SdkError::storage(
                    &format!("{} is damaged", path.display()),
                    "not a UUID",
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let id = uuid::Uuid::new_v4().to_string();
                    write_atomic(&path, format!("{id}\n").as_bytes())?;
                    Ok(id)
                }
                Err(e) => Err(SdkError::storage(
                    &format!("cannot read {}", path.display()),
                    e,
                )),
            }
        }
    }
}
