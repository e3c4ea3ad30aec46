//! Authorization: resolve the handshake code (or the public trial), check its session password and
//! validation fields, keep the items that serve the request in consumption order, let the store
//! take a quota place atomically, and sign a grant.

use tally_core::admission::{Ask, Decision, Refusal};
use tally_core::matching::{self, Mismatch, Standing};
use tally_core::resolve::{Target, resolve};
use tally_core::validity::{local_validity, offline_days};
use tally_crypto::session::{SessionKey, TicketContents};
use tally_proto::license::LicenseType;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Grant, GrantedItem, SESSION_SECONDS, SessionGrant,
};
use tally_proto::{ErrorCode, UnixSeconds};
use tally_store::{AdmitRequest, HandshakeRow};

use crate::error::{ApiError, ApiResult};
use crate::service::{password, validate};
use crate::state::AppState;

/// Who sent a request: its network address (password throttling) and, from a browser, the page's
/// origin (checked against the handshake code's domains, `tally_core::origin`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub address: std::net::IpAddr,
    /// The `Origin` header; absent for native SDKs.
    pub origin: Option<String>,
}

/// The handshake code a request resolved to, and the end of its public trial if it is one.
struct Resolved {
    handshake: HandshakeRow,
    trial_ends: Option<UnixSeconds>,
}

/// Authorizes `req`; `session` is the report-session key exported from the request's HPKE
/// context, handed back to the client inside a ticket only this server can open.
pub async fn authorize(
    state: &AppState,
    req: AuthorizeRequest,
    session: SessionKey,
    caller: Caller,
) -> ApiResult<AuthorizeResponse> {
    if let Some(problem) = &state.identity.mismatch {
        return Err(ApiError::new(ErrorCode::IdentityMismatch, problem.clone()));
    }
    check_fields(&req)?;
    let now = state.now();
    let Resolved {
        handshake,
        trial_ends,
    } = resolve_handshake(state, &req, now).await?;
    let code = handshake.code.clone();
    let result = authorize_on(state, &req, handshake, trial_ends, now, session, &caller).await;
    // Outcomes per code feed the failed-authorization alert.
    state.outcomes.add(&code, result.is_ok(), now);
    result
}

/// Authorization once the handshake code is known.
async fn authorize_on(
    state: &AppState,
    req: &AuthorizeRequest,
    handshake: HandshakeRow,
    trial_ends: Option<UnixSeconds>,
    now: UnixSeconds,
    session: SessionKey,
    caller: &Caller,
) -> ApiResult<AuthorizeResponse> {
    check_access(state, &handshake, req, caller).await?;

    let (candidates, licenses_of) = matching_items(&handshake, req, now)?;
    let (candidates, licenses_of) = activated_here(state, candidates, licenses_of).await?;
    if let Some(origin) = &caller.origin {
        let counts_domains = candidates
            .iter()
            .any(|i| i.license_type == LicenseType::PerDomain);
        tally_core::origin::speaks_for(origin, req.validation.domain.as_deref(), counts_domains)
            .map_err(origin_refusal)?;
    }
    let ask = Ask {
        instances: u64::from(req.instances.unwrap_or(1).max(1)),
        domain: req
            .validation
            .domain
            .as_ref()
            .map(|d| d.trim().to_ascii_lowercase()),
    };
    let admission = state
        .store
        .admit_device(AdmitRequest {
            device_uuid: req.device_uuid.clone(),
            handshake_code: handshake.code.clone(),
            friendly_name: req.friendly_name.clone(),
            candidates: candidates.clone(),
            ask,
            now,
        })
        .await?;
    let (index, active_until) = match admission.decision {
        Decision::Admit {
            index,
            active_until,
            ..
        } => (index, active_until),
        Decision::Refuse(r) => return Err(refusal(r)),
    };
    let (item, license_id) = match (candidates.get(index), licenses_of.get(index)) {
        (Some(i), Some(l)) => (i, l),
        _ => {
            return Err(ApiError::internal(
                "the store admitted an item that is not among the candidates",
            ));
        }
    };

    let days = offline_days(item, state.settings.buffer_days, req.buffer_days);
    let local = local_validity(item, active_until, now, days, trial_ends);
    let concurrent = matches!(
        item.license_type,
        LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance
    );
    let grant = Grant {
        grant_id: tally_crypto::random_id()
            .map_err(|e| ApiError::internal(format!("no random grant id: {e}")))?,
        server_uuid: state.identity.uuid.clone(),
        device_uuid: req.device_uuid.clone(),
        organization: handshake.organization.clone(),
        handshake_code: handshake.code.clone(),
        items: vec![GrantedItem {
            license_id: license_id.clone(),
            item_id: item.id.clone(),
            product: item.product.clone(),
            modules: item.modules.clone(),
            license_type: item.license_type,
            end: item.end,
            grace_end: item.grace_end(),
        }],
        issued_at: now,
        valid_until: local.valid_until,
        renew_at: local.renew_at,
        seat_until: concurrent.then_some(active_until),
    };
    let signed = tally_crypto::grant::sign_grant(&grant, &state.identity.signing)
        .map_err(|e| ApiError::internal(format!("signing the grant failed: {e}")))?;
    let certificates = state.certificate(license_id).await?.into_iter().collect();
    tracing::info!(device = %req.device_uuid, code = %handshake.code, item = %item.id, "authorized");
    let expires_at = now + SESSION_SECONDS;
    let ticket = state
        .tickets
        .issue(
            &session,
            &TicketContents {
                device_uuid: req.device_uuid.clone(),
                handshake_code: handshake.code.clone(),
                expires_at,
            },
        )
        .map_err(|e| ApiError::internal(format!("issuing the session ticket failed: {e}")))?;
    Ok(AuthorizeResponse {
        grant: signed,
        certificates,
        server_time: now,
        session: Some(SessionGrant { ticket, expires_at }),
    })
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::DeviceQuota => ApiError::plain(ErrorCode::DeviceQuotaExceeded),
        Refusal::UsageQuota => ApiError::plain(ErrorCode::UsageQuotaExceeded),
        Refusal::Seats => ApiError::plain(ErrorCode::SeatsExhausted),
        Refusal::DomainQuota => ApiError::plain(ErrorCode::DomainQuotaExceeded),
        Refusal::DomainMissing => ApiError::new(
            ErrorCode::ValidationFieldMismatch,
            "this license counts domains: the request must name its domain",
        ),
    }
}

fn origin_refusal(r: tally_core::origin::OriginRefusal) -> ApiError {
    ApiError::new(ErrorCode::OriginNotAllowed, r.to_string())
}

fn check_fields(req: &AuthorizeRequest) -> ApiResult<()> {
    validate::identifier("device_uuid", &req.device_uuid, ErrorCode::BadRequest)?;
    if req.product.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::BadRequest, "product: required"));
    }
    validate::text("product", &req.product, 128, ErrorCode::BadRequest)?;
    if let Some(name) = &req.friendly_name {
        validate::text(
            "friendly_name",
            name,
            tally_proto::wire::MAX_FRIENDLY_NAME_LEN,
            ErrorCode::BadRequest,
        )?;
    }
    if req.modules.len() > 64 {
        return Err(ApiError::new(ErrorCode::BadRequest, "modules: at most 64"));
    }
    for (field, value) in [
        ("validation.domain", &req.validation.domain),
        ("validation.app_id", &req.validation.app_id),
        ("validation.process", &req.validation.process),
        ("session_password", &req.session_password),
    ] {
        if let Some(v) = value {
            validate::text(field, v, 255, ErrorCode::BadRequest)?;
        }
    }
    if req.buffer_days == Some(0) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "buffer_days: at least 1 (it can only lower the offline days the license allows)",
        ));
    }
    if let Some(n) = req.instances
        && !(1..=10_000).contains(&n)
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "instances: between 1 and 10000",
        ));
    }
    Ok(())
}

/// A disabled code, a page the code does not name, a wrong session password or a request from a
/// place the code does not allow is refused before any quota is touched. The page comes before
/// the password, so that a page of another site cannot try passwords.
async fn check_access(
    state: &AppState,
    handshake: &HandshakeRow,
    req: &AuthorizeRequest,
    caller: &Caller,
) -> ApiResult<()> {
    if !handshake.enabled {
        return Err(ApiError::plain(ErrorCode::HandshakeDisabled));
    }
    if let Some(origin) = &caller.origin {
        tally_core::origin::code_allows(&handshake.validation.domains, origin)
            .map_err(origin_refusal)?;
    }
    if let Some(hash) = &handshake.session_password_hash {
        let given = req.session_password.as_deref().unwrap_or("");
        password::check(state, &handshake.code, hash, given, caller.address).await?;
    }
    tally_core::validation::check(&handshake.validation, &req.validation).map_err(|field| {
        ApiError::new(
            ErrorCode::ValidationFieldMismatch,
            format!("the {field} is not allowed for this handshake code"),
        )
    })
}

/// Of the matching items, those whose license is activated for this instance: a device would
/// refuse a grant from here for the others (see `AppState::activated_here`).
async fn activated_here(
    state: &AppState,
    candidates: Vec<tally_proto::license::LicenseItem>,
    licenses_of: Vec<String>,
) -> ApiResult<(Vec<tally_proto::license::LicenseItem>, Vec<String>)> {
    let mut kept = (Vec::new(), Vec::new());
    for (item, license_id) in candidates.into_iter().zip(licenses_of) {
        if state.activated_here(&license_id).await? {
            kept.0.push(item);
            kept.1.push(license_id);
        }
    }
    if kept.0.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoMatchingLicense,
            format!(
                "the licenses that serve this request are not activated for this server instance ({}): import an activation that names it",
                state.identity.uuid
            ),
        ));
    }
    Ok(kept)
}

/// The items of the code that serve the request, in consumption order, with their license ids:
/// current items first, then items in their grace after the end.
fn matching_items(
    handshake: &HandshakeRow,
    req: &AuthorizeRequest,
    now: UnixSeconds,
) -> ApiResult<(Vec<tally_proto::license::LicenseItem>, Vec<String>)> {
    let mut best_mismatch = None;
    let mut serving = Vec::new();
    for (license_id, item) in &handshake.items {
        match matching::check(item, &req.product, req.version, &req.modules, now) {
            Ok(standing) => serving.push((standing, license_id, item)),
            Err(m) => best_mismatch = best_mismatch.max(Some(m)),
        }
    }
    // Stable: the consumption order holds within each standing.
    serving.sort_by_key(|(standing, ..)| *standing == Standing::Grace);
    let (licenses_of, candidates): (Vec<String>, Vec<tally_proto::license::LicenseItem>) = serving
        .into_iter()
        .map(|(_, license_id, item)| (license_id.clone(), item.clone()))
        .unzip();
    if candidates.is_empty() {
        return Err(match best_mismatch {
            Some(Mismatch::Expired) => ApiError::plain(ErrorCode::LicenseExpired),
            Some(Mismatch::NotYetValid) => ApiError::plain(ErrorCode::LicenseNotYetValid),
            _ => ApiError::new(
                ErrorCode::NoMatchingLicense,
                format!(
                    "no license item on this handshake code serves product `{}` with the version and modules asked",
                    req.product
                ),
            ),
        });
    }
    Ok((candidates, licenses_of))
}

/// Applies the organization/handshake resolution table, including the public trial.
async fn resolve_handshake(
    state: &AppState,
    req: &AuthorizeRequest,
    now: UnixSeconds,
) -> ApiResult<Resolved> {
    let (code, trial_ends) = match resolve(&req.organization, &req.handshake_code) {
        Target::Trial => {
            let Some(org) = &state.settings.trial_organization else {
                return Err(ApiError::new(
                    ErrorCode::TrialUnavailable,
                    "this server offers no public trial",
                ));
            };
            let length = i64::from(state.settings.trial_days) * 86_400;
            let ends = state.store.trial(&req.device_uuid, now, length).await?;
            if now >= ends {
                return Err(ApiError::new(
                    ErrorCode::TrialUnavailable,
                    "this device has already used its trial",
                ));
            }
            let default = state.store.organization(org).await?.ok_or_else(|| {
                tracing::error!(organization = %org, "the trial organization does not exist");
                ApiError::new(
                    ErrorCode::TrialUnavailable,
                    "the trial is not set up on this server",
                )
            })?;
            (default.default_code, Some(ends))
        }
        Target::DefaultOf { organization } => {
            match state.store.organization(&organization).await? {
                Some(org) => (org.default_code, None),
                None => return Err(ApiError::plain(ErrorCode::UnknownOrganization)),
            }
        }
        Target::Code { code, organization } => {
            let handshake = state
                .store
                .handshake(&code)
                .await?
                .ok_or_else(|| ApiError::plain(ErrorCode::UnknownHandshakeCode))?;
            if let Some(org) = organization
                && org != handshake.organization
            {
                return Err(ApiError::plain(ErrorCode::HandshakeOrganizationMismatch));
            }
            return Ok(Resolved {
                handshake,
                trial_ends: None,
            });
        }
    };
    let handshake = state
        .store
        .handshake(&code)
        .await?
        .ok_or_else(|| ApiError::plain(ErrorCode::UnknownOrganization))?;
    Ok(Resolved {
        handshake,
        trial_ends,
    })
}
