//! Authorization: ask the servers in order; when none answers, fall back to the grant held on
//! the device, verified again from the vendor key down, within its local validity and with a
//! sane clock. A refusal the server sealed that denies the device the license makes the device
//! forget its grant.

use serde::{Deserialize, Serialize};
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::{AuthorizeRequest, AuthorizeResponse, Grant, PATH_AUTHORIZE, SignedGrant};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::rollback;
use crate::session::{Failure, Session, no_server_code};
use crate::state::{GRANT, REFUSAL, StateLock};
use crate::verify;

/// The result of [`Client::authorize`] and [`Client::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub grant: Grant,
    /// True when the grant held on the device was used rather than a fresh answer of a server.
    pub cached: bool,
    /// Successes the host application may want to show: `CachedGrantUsed` when no server
    /// answered, `LicenseInGrace` when the license has ended and works during its grace days.
    pub warnings: Vec<ErrorCode>,
    /// When the license's grace ends, while it is in grace.
    pub grace_until: Option<UnixSeconds>,
}

/// The last verified grant with everything needed to verify it again offline, as `grant.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedGrant {
    pub grant: SignedGrant,
    pub certificates: Vec<String>,
    pub server: ServerPublicIdentity,
}

/// Why the server last refused this device for good, as `refusal.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refusal {
    code: u16,
    message: String,
    at: UnixSeconds,
}

/// Why no server gave a grant.
pub(crate) enum Unanswered {
    /// No server answered (or none could prove the vendor's activation).
    Offline { problems: String, untrusted: bool },
    /// A server refused.
    Refused(SdkError),
}

impl Client {
    /// Asks the servers in order for a grant and keeps it. Only when no server gives an answer
    /// (transport failure, or a server that cannot prove the vendor's activation) is the grant
    /// held on the device used, reported with `cached = true` and `CachedGrantUsed`. A refusal
    /// by a server is returned as is and never replaced by the held grant; when it denies this
    /// device the license (quota, dates, code) the held grant is forgotten.
    pub fn authorize(&self) -> SdkResult<Authorization> {
        match self.authorize_online() {
            Ok(auth) => Ok(auth),
            Err(Unanswered::Refused(e)) => Err(e),
            Err(Unanswered::Offline {
                problems,
                untrusted,
            }) => {
                tracing::warn!(%problems, "no server answered; trying the held grant");
                self.offline(&problems, untrusted)
            }
        }
    }

    /// Whether the product may run now, from the grant held on the device alone: verified, within
    /// its local validity (a concurrent seat's end, the UTC day, the offline days), the clock not
    /// turned back, not refused since. Never contacts a server; a background thread started with
    /// [`Client::spawn_background`] keeps the grant renewed.
    pub fn check(&self) -> SdkResult<Authorization> {
        let now = self.clock.now();
        let lock = self.state.lock()?;
        let high_water = rollback::observe(&lock, now)?;
        let Some(verified) = self.cached_grant(&lock)? else {
            return Err(self.no_grant(&lock, "authorize once first")?);
        };
        let grant = verified?;
        rollback::check(now, high_water)?;
        if now >= grant.valid_until {
            let (code, what) = if grant.seat_until.is_some() {
                (ErrorCode::SeatLapsed, "the concurrent seat ended")
            } else {
                (ErrorCode::GrantExpired, "the grant's offline time ended")
            };
            return Err(SdkError::new(
                code,
                format!("{what} at {} and no server renewed it", grant.valid_until),
            ));
        }
        Ok(authorization(grant, true, now))
    }

    /// The servers in order, without falling back to the held grant.
    pub(crate) fn authorize_online(&self) -> Result<Authorization, Unanswered> {
        let mut problems = Vec::new();
        let mut untrusted = false;
        for base in &self.config.servers {
            match self.authorize_at(base) {
                Ok(auth) => return Ok(auth),
                Err(Failure::Refused(e)) => return Err(Unanswered::Refused(e)),
                Err(Failure::Denied(e)) => {
                    if e.ends_grant() {
                        self.forget_grant(&e).map_err(Unanswered::Refused)?;
                    }
                    return Err(Unanswered::Refused(e));
                }
                Err(Failure::Unreachable(m)) => problems.push(m),
                Err(Failure::Untrusted(m)) => {
                    tracing::warn!(problem = %m, "server not trusted");
                    untrusted = true;
                    problems.push(m);
                }
            }
        }
        Err(Unanswered::Offline {
            problems: problems.join("; "),
            untrusted,
        })
    }

    fn authorize_at(&self, base: &str) -> Result<Authorization, Failure> {
        let mut session = Session::open(&self.transport, &*self.clock, &self.vendor, base)?;
        let (response, session_key): (AuthorizeResponse, _) =
            session.call(PATH_AUTHORIZE, "authorize", |stamp| self.request(stamp))?;
        let report_session = response.session.clone();
        let auth = self
            .accept_authorization(&session.identity, response)
            .map_err(Failure::Refused)?;
        if let Some(granted) = report_session {
            self.open_report_session(base, granted, session_key, session.offset())
                .map_err(Failure::Refused)?;
        }
        Ok(auth)
    }

    fn request(&self, stamp: tally_proto::wire::RequestStamp) -> AuthorizeRequest {
        let c = &self.config;
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
            buffer_days: c.buffer_days,
            instances: c.instances,
        }
    }

    /// Verifies an authorization answer of `server` (whose identity its hello showed) and
    /// keeps it. Not part of the stable API: it lets tests exercise verification without HTTP.
    #[doc(hidden)]
    pub fn accept_authorization(
        &self,
        server: &ServerPublicIdentity,
        response: AuthorizeResponse,
    ) -> SdkResult<Authorization> {
        let grant = verify::grant(
            &self.vendor,
            server,
            &response.certificates,
            &response.grant,
            &self.device_uuid,
        )?;
        let cache = CachedGrant {
            grant: response.grant,
            certificates: response.certificates,
            server: server.clone(),
        };
        let now = self.clock.now();
        let lock = self.state.lock()?;
        lock.write(GRANT, &cache)?;
        lock.remove(REFUSAL)?;
        rollback::reset(&lock, now)?;
        tracing::info!(server = %grant.server_uuid, valid_until = grant.valid_until, "authorized");
        Ok(authorization(grant, false, now))
    }

    /// The offline path. `problems` says why no server answered.
    fn offline(&self, problems: &str, untrusted: bool) -> SdkResult<Authorization> {
        let mut auth = self.check().map_err(|e| match e.code {
            ErrorCode::NoGrant => SdkError::new(
                no_server_code(untrusted),
                format!("{problems}; and no grant is held"),
            ),
            ErrorCode::SeatLapsed | ErrorCode::GrantExpired => {
                SdkError::new(e.code, format!("{} ({problems})", e.message))
            }
            _ => e,
        })?;
        auth.warnings.insert(0, ErrorCode::CachedGrantUsed);
        Ok(auth)
    }

    /// Forgets the held grant because the server refused this device the license for good; the
    /// refusal is kept to explain later offline attempts.
    pub(crate) fn forget_grant(&self, refusal: &SdkError) -> SdkResult<()> {
        tracing::warn!(error = %refusal, "the server refused this device; its grant is forgotten");
        let lock = self.state.lock()?;
        lock.remove(GRANT)?;
        lock.write(
            REFUSAL,
            &Refusal {
                code: refusal.code.code(),
                message: refusal.message.clone(),
                at: self.clock.now(),
            },
        )
    }

    /// The error for "no grant is held": the server's last refusal if there was one.
    fn no_grant(&self, lock: &StateLock<'_>, hint: &str) -> SdkResult<SdkError> {
        Ok(match lock.read::<Refusal>(REFUSAL)? {
            Some(r) => {
                let code = ErrorCode::from_code(r.code).unwrap_or(ErrorCode::NoGrant);
                SdkError::new(
                    code,
                    format!(
                        "the server refused this device at {}: {}; authorize again once that has changed",
                        r.at, r.message
                    ),
                )
            }
            None => SdkError::new(ErrorCode::NoGrant, format!("no grant is held: {hint}")),
        })
    }

    /// The held grant verified again: `None` when nothing is held; the inner result is the
    /// verification (`GrantInvalid`).
    /// The file is read each time (another process may have replaced it); its signatures are
    /// verified again only when it differs from the one verified last.
    pub(crate) fn cached_grant(&self, lock: &StateLock<'_>) -> SdkResult<Option<SdkResult<Grant>>> {
        let Some(cache) = lock.read::<CachedGrant>(GRANT)? else {
            return Ok(None);
        };
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, grant)) = verified.as_ref()
            && *known == cache
        {
            return Ok(Some(Ok(grant.clone())));
        }
        let result = verify::grant(
            &self.vendor,
            &cache.server,
            &cache.certificates,
            &cache.grant,
            &self.device_uuid,
        );
        *verified = result.as_ref().ok().map(|g| (cache, g.clone()));
        Ok(Some(result))
    }
}

/// An authorization of `grant` at `now`, with the grace warning when its items have ended.
fn authorization(grant: Grant, cached: bool, now: UnixSeconds) -> Authorization {
    let ended = grant.items.iter().all(|i| now >= i.end);
    let grace_until = ended
        .then(|| grant.items.iter().map(|i| i.grace_end).max())
        .flatten();
    Authorization {
        warnings: grace_until
            .map(|_| ErrorCode::LicenseInGrace)
            .into_iter()
            .collect(),
        grace_until,
        grant,
        cached,
    }
}
