//! Usage statistics per handshake code, per UTC day, per feature.

use tally_proto::ErrorCode;
use tally_proto::admin::{UsageQuery, UsageRow};
use tally_store::UsageFilter;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Days since the Unix epoch of a `YYYY-MM-DD` date.
pub fn parse_day(field: &str, text: &str) -> ApiResult<i64> {
    tally_proto::time_text::parse_day(text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{field}: expected a date as YYYY-MM-DD, got `{text}`"),
        )
    })
}

/// `YYYY-MM-DD` of a day number.
pub use tally_proto::time_text::day_number as format_day;

pub async fn usage(state: &AppState, q: UsageQuery) -> ApiResult<Vec<UsageRow>> {
    let from_day = q
        .from
        .as_deref()
        .map(|t| parse_day("from", t))
        .transpose()?;
    let to_day = q.to.as_deref().map(|t| parse_day("to", t)).transpose()?;
    if let (Some(f), Some(t)) = (from_day, to_day)
        && f > t
    {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "from: must not be after `to`",
        ));
    }
    let rows = state
        .store
        .usage_by_day(UsageFilter {
            from_day,
            to_day,
            handshake_code: q.handshake_code,
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| UsageRow {
            day: format_day(r.day),
            handshake_code: r.handshake_code,
            feature: r.feature,
            count: r.count,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(parse_day("d", "1970-01-01").unwrap(), 0);
        assert_eq!(parse_day("d", "2026-11-22").unwrap(), 20_779);
        assert_eq!(format_day(20_779), "2026-11-22");
        assert!(parse_day("d", "2026-13-01").is_err());
        assert!(parse_day("d", "yesterday").is_err());
    }
}
