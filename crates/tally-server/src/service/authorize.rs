//! Authorization: resolve the handshake code, pick the items that serve the request, let the store
//! take a quota place atomically, and sign a grant.

use tally_core::admission::{Decision, Refusal};
use tally_core::matching::{self, Mismatch};
use tally_core::resolve::{Target, resolve};
use tally_proto::ErrorCode;
use tally_proto::wire::{AuthorizeRequest, AuthorizeResponse, Grant, GrantedItem};
use tally_store::{AdmitRequest, HandshakeRow};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::validate;

pub async fn authorize(state: &AppState, req: AuthorizeRequest) -> ApiResult<AuthorizeResponse> {
    if let Some(problem) = &state.identity.mismatch {
        return Err(ApiError::new(ErrorCode::IdentityMismatch, problem.clone()));
    }
    check_fields(&req)?;
    let now = state.now();
    let handshake = find_handshake(state, &req).await?;
    if !handshake.enabled {
        return Err(ApiError::plain(ErrorCode::HandshakeDisabled));
    }

    let mut best_mismatch = None;
    let mut candidates = Vec::new();
    let mut licenses_of = Vec::new();
    for (license_id, item) in &handshake.items {
        match matching::check(item, &req.product, req.version, &req.modules, now) {
            Ok(()) => {
                candidates.push(item.clone());
                licenses_of.push(license_id.clone());
            }
            Err(m) => best_mismatch = best_mismatch.max(Some(m)),
        }
    }
    if candidates.is_empty() {
        return Err(match best_mismatch {
            Some(Mismatch::Expired) => ApiError::plain(ErrorCode::LicenseExpired),
            Some(Mismatch::NotYetValid) => ApiError::plain(ErrorCode::LicenseNotYetValid),
            _ => ApiError::new(
                ErrorCode::NoMatchingLicense,
                format!(
                    "no license item on this handshake code serves product `{}` with the modules asked",
                    req.product
                ),
            ),
        });
    }

    let admission = state
        .store
        .admit_device(AdmitRequest {
            device_uuid: req.device_uuid.clone(),
            handshake_code: handshake.code.clone(),
            friendly_name: req.friendly_name.clone(),
            candidates: candidates.clone(),
            now,
        })
        .await?;
    let index = match admission.decision {
        Decision::Admit { index, .. } => index,
        Decision::Refuse(Refusal::DeviceQuota) => {
            return Err(ApiError::plain(ErrorCode::DeviceQuotaExceeded));
        }
        Decision::Refuse(Refusal::UnsupportedType(t)) => {
            return Err(ApiError::new(
                ErrorCode::NoMatchingLicense,
                format!(
                    "license type `{}` is not enforced by this server version",
                    t.as_str()
                ),
            ));
        }
    };
    let (item, license_id) = match (candidates.get(index), licenses_of.get(index)) {
        (Some(i), Some(l)) => (i, l),
        _ => return Err(ApiError::plain(ErrorCode::Internal)),
    };

    let buffer_days = req.buffer_days.unwrap_or(state.settings.buffer_days);
    let grant = Grant {
        grant_id: tally_crypto::random_id().map_err(|_| ApiError::plain(ErrorCode::Internal))?,
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
        }],
        issued_at: now,
        valid_until: tally_core::validity::grant_valid_until(now, buffer_days, item.end),
        seat_until: None,
    };
    let signed = tally_crypto::grant::sign_grant(&grant, &state.identity.signing)
        .map_err(|_| ApiError::plain(ErrorCode::Internal))?;
    let certificates = state
        .store
        .licenses()
        .await?
        .into_iter()
        .filter(|l| &l.license.license_id == license_id)
        .map(|l| l.activated_text)
        .collect();
    tracing::info!(device = %req.device_uuid, code = %handshake.code, item = %item.id, "authorized");
    Ok(AuthorizeResponse {
        grant: signed,
        certificates,
        server_time: now,
    })
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
    if let Some(days) = req.buffer_days
        && !(tally_proto::MIN_BUFFER_DAYS..=3650).contains(&days)
    {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "buffer_days: between 7 and 3650",
        ));
    }
    Ok(())
}

/// Applies the organization/handshake resolution table.
async fn find_handshake(state: &AppState, req: &AuthorizeRequest) -> ApiResult<HandshakeRow> {
    let code = match resolve(&req.organization, &req.handshake_code) {
        Target::Trial => return Err(ApiError::plain(ErrorCode::TrialUnavailable)),
        Target::DefaultOf { organization } => {
            match state.store.organization(&organization).await? {
                Some(org) => org.default_code,
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
            return Ok(handshake);
        }
    };
    state
        .store
        .handshake(&code)
        .await?
        .ok_or_else(|| ApiError::plain(ErrorCode::UnknownOrganization))
}
