//! Usage reports: validated, then recorded exactly once per report id.

use tally_proto::ErrorCode;
use tally_proto::wire::{
    MAX_FEATURES_PER_REPORT, MAX_REPORTS_PER_REQUEST, ReportRequest, ReportResponse,
};
use tally_store::{ReportBatch, ReportRow};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::service::validate;

/// Reports about slices further in the future than this are refused.
const MAX_FUTURE_SECONDS: i64 = 600;

pub async fn report(state: &AppState, req: ReportRequest) -> ApiResult<ReportResponse> {
    let now = state.now();
    validate::identifier("device_uuid", &req.device_uuid, ErrorCode::BadRequest)?;
    validate::identifier("handshake_code", &req.handshake_code, ErrorCode::BadRequest)?;
    if req.reports.len() > MAX_REPORTS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("reports: at most {MAX_REPORTS_PER_REQUEST} per request"),
        ));
    }
    let handshake = state
        .store
        .handshake(&req.handshake_code)
        .await?
        .ok_or_else(|| ApiError::plain(ErrorCode::UnknownHandshakeCode))?;
    if !req.organization.is_empty() && req.organization != handshake.organization {
        return Err(ApiError::plain(ErrorCode::HandshakeOrganizationMismatch));
    }
    let latest_slice = tally_proto::slice::slice_of(now + MAX_FUTURE_SECONDS);
    let mut rows = Vec::with_capacity(req.reports.len());
    for r in req.reports {
        validate::identifier("report_id", &r.report_id, ErrorCode::BadRequest)?;
        if r.slice > latest_slice {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("report {}: its slice lies in the future", r.report_id),
            ));
        }
        if r.counts.len() > MAX_FEATURES_PER_REPORT {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "report {}: at most {MAX_FEATURES_PER_REPORT} features",
                    r.report_id
                ),
            ));
        }
        for (feature, count) in &r.counts {
            validate::feature(feature)?;
            if *count > i64::MAX as u64 / 2 {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("feature `{feature}`: count too large"),
                ));
            }
        }
        rows.push(ReportRow {
            report_id: r.report_id,
            slice: r.slice,
            counts: r.counts,
        });
    }
    let outcome = state
        .store
        .record_reports(ReportBatch {
            device_uuid: req.device_uuid,
            handshake_code: handshake.code,
            reports: rows,
            received_at: now,
        })
        .await?;
    Ok(ReportResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        server_time: now,
    })
}
