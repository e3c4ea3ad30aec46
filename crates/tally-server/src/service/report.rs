//! Usage reports of a report session, judged report by report: a malformed report is refused for
//! good without holding back the others, a report whose slice lies ahead of the server's clock is
//! counted in the present slice, and the rest is recorded exactly once per report id — if the
//! device still holds a live place on the session's handshake code.

use tally_core::reporting::counted_slice;
use tally_crypto::session::TicketContents;
use tally_proto::wire::{
    MAX_FEATURES_PER_REPORT, MAX_REPORTS_PER_REQUEST, RefusedReport, ReportRequest, ReportResponse,
    UsageReport,
};
use tally_proto::{ErrorCode, UnixSeconds};
use tally_store::{ReportBatch, ReportResult, ReportRow};

use crate::error::{ApiError, ApiResult};
use crate::service::validate;
use crate::state::AppState;

/// Records the reports of `req`, sent in the session of `session` (its device and code).
pub async fn report(
    state: &AppState,
    session: &TicketContents,
    req: ReportRequest,
) -> ApiResult<ReportResponse> {
    let now = state.now();
    if req.reports.len() > MAX_REPORTS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("reports: at most {MAX_REPORTS_PER_REQUEST} per request"),
        ));
    }
    let mut rows = Vec::with_capacity(req.reports.len());
    let mut refused = Vec::new();
    for r in req.reports {
        match judge(r, now) {
            Ok(row) => rows.push(row),
            Err(r) => refused.push(r),
        }
    }
    let outcome = match state
        .store
        .record_reports(ReportBatch {
            device_uuid: session.device_uuid.clone(),
            handshake_code: session.handshake_code.clone(),
            reports: rows,
            received_at: now,
        })
        .await?
    {
        ReportResult::Recorded(outcome) => outcome,
        ReportResult::NoLivePlace => {
            return Err(ApiError::plain(ErrorCode::NoLivePlace).with_server_time(now));
        }
    };
    Ok(ReportResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
        refused,
        exhausted: outcome.exhausted,
        server_time: now,
    })
}

/// One report: a row to record, or why it can never be counted.
fn judge(r: UsageReport, now: UnixSeconds) -> Result<ReportRow, RefusedReport> {
    if let Err(e) = well_formed(&r) {
        return Err(RefusedReport {
            report_id: r.report_id.chars().take(64).collect(),
            code: e.code.code(),
            message: e.message,
        });
    }
    Ok(ReportRow {
        slice: counted_slice(r.slice, now),
        report_id: r.report_id,
        counts: r.counts,
    })
}

/// What makes a report impossible to count, whenever it is sent.
fn well_formed(r: &UsageReport) -> ApiResult<()> {
    validate::identifier("report_id", &r.report_id, ErrorCode::BadRequest)?;
    if r.slice < 0 {
        return Err(ApiError::new(ErrorCode::BadRequest, "slice: before 1970"));
    }
    if r.counts.len() > MAX_FEATURES_PER_REPORT {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("at most {MAX_FEATURES_PER_REPORT} features"),
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report(id: &str, slice: i64, counts: &[(&str, u64)]) -> UsageReport {
        UsageReport {
            report_id: id.into(),
            slice,
            counts: counts
                .iter()
                .map(|(f, n)| ((*f).to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn each_report_is_judged_on_its_own() {
        let now = 180 * 1000;
        let row = judge(report("r1", 999, &[("scan", 2)]), now).unwrap();
        assert_eq!(row.slice, 999);
        let ahead = judge(report("r2", 5000, &[("scan", 2)]), now).unwrap();
        assert_eq!(ahead.slice, 1000, "counted in the present slice");
        let bad = judge(report("r3", 999, &[("has space", 1)]), now).unwrap_err();
        assert_eq!(bad.report_id, "r3");
        assert_eq!(bad.code, ErrorCode::BadRequest.code());
        let huge = judge(report("r4", 999, &[("scan", u64::MAX)]), now).unwrap_err();
        assert!(huge.message.contains("too large"), "{}", huge.message);
        assert!(judge(report("", 999, &[]), now).is_err());
        assert!(judge(report("r5", -1, &[]), now).is_err());
    }
}
