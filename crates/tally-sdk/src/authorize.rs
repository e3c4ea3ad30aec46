//! Authorization: ask the servers in order; when none answers, fall back to the cached grant,
//! verified again from the vendor key down, within its validity and with a sane clock.

use serde::{Deserialize, Serialize};
use tally_proto::ErrorCode;
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::{AuthorizeRequest, AuthorizeResponse, Grant, PATH_AUTHORIZE, SignedGrant};

use crate::client::Client;
use crate::error::{SdkError, SdkResult};
use crate::rollback;
use crate::session::{Failure, Session, no_server_code};
use crate::state::{GRANT, StateLock};
use crate::verify;

/// The result of [`Client::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub grant: Grant,
    /// True when no server answered and the cached grant was used.
    pub cached: bool,
    /// `Some(CachedGrantUsed)` when cached: a success the host application may want to show.
    pub warning: Option<ErrorCode>,
}

/// The last verified grant with everything needed to verify it again offline, as `grant.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedGrant {
    pub grant: SignedGrant,
    pub certificates: Vec<String>,
    pub server: ServerPublicIdentity,
}

impl Client {
    /// Asks the servers in order for a grant and caches it. Only when no server gives an answer
    /// (transport failure, or a server that cannot prove the vendor's activation) is the cached
    /// grant used, reported with `cached = true`. A refusal by a server is returned as is and
    /// never replaced by the cache.
    pub fn authorize(&self) -> SdkResult<Authorization> {
        let mut problems = Vec::new();
        let mut untrusted = false;
        for base in &self.config.servers {
            match self.authorize_at(base) {
                Ok(auth) => return Ok(auth),
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Unreachable(m)) => problems.push(m),
                Err(Failure::Untrusted(m)) => {
                    tracing::warn!(problem = %m, "server not trusted");
                    untrusted = true;
                    problems.push(m);
                }
            }
        }
        let problems = problems.join("; ");
        tracing::warn!(%problems, "no server answered; trying the cached grant");
        self.offline(&problems, untrusted)
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
            self.open_report_session(
                base,
                &auth.grant.handshake_code,
                granted,
                session_key,
                session.offset(),
            );
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
            buffer_days: Some(c.buffer_days),
            instances: c.instances,
        }
    }

    /// Verifies an authorization answer of `server` (whose identity its hello showed) and
    /// caches it. Not part of the stable API: it lets tests exercise verification without HTTP.
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
        let lock = self.state.lock()?;
        lock.write(GRANT, &cache)?;
        rollback::reset(&lock, self.clock.now())?;
        tracing::info!(server = %grant.server_uuid, valid_until = grant.valid_until, "authorized");
        Ok(Authorization {
            grant,
            cached: false,
            warning: None,
        })
    }

    /// The offline path. `problems` says why no server answered.
    fn offline(&self, problems: &str, untrusted: bool) -> SdkResult<Authorization> {
        let now = self.clock.now();
        let lock = self.state.lock()?;
        let high_water = rollback::observe(&lock, now)?;
        let Some(verified) = self.cached_grant(&lock)? else {
            let code = no_server_code(untrusted);
            return Err(SdkError::new(
                code,
                format!("{problems}; and no grant is cached"),
            ));
        };
        let grant = verified?;
        rollback::check(now, high_water)?;
        if now >= grant.valid_until {
            return Err(SdkError::new(
                ErrorCode::GrantExpired,
                format!(
                    "the cached grant expired at {} and no server answered ({problems})",
                    grant.valid_until
                ),
            ));
        }
        Ok(Authorization {
            grant,
            cached: true,
            warning: Some(ErrorCode::CachedGrantUsed),
        })
    }

    /// The cached grant verified again: `None` when nothing is cached; the inner result is the
    /// verification (`GrantInvalid`).
    pub(crate) fn cached_grant(&self, lock: &StateLock<'_>) -> SdkResult<Option<SdkResult<Grant>>> {
        Ok(lock.read::<CachedGrant>(GRANT)?.map(|cache| {
            verify::grant(
                &self.vendor,
                &cache.server,
                &cache.certificates,
                &cache.grant,
                &self.device_uuid,
            )
        }))
    }
}
