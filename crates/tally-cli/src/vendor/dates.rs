//! Dates as the vendor types and reads them. Documents hold Unix seconds (no calendar in signed
//! data); people write `YYYY-MM-DD` (midnight UTC) or an RFC 3339 instant.

use tally_proto::UnixSeconds;

/// Parses `YYYY-MM-DD` as midnight UTC, or an RFC 3339 instant with its offset.
pub fn parse(text: &str) -> Result<UnixSeconds, String> {
    let text = text.trim();
    if let Some(midnight) = tally_proto::time_text::parse_midnight(text) {
        return Ok(midnight);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("`{text}` is not a date (use YYYY-MM-DD or RFC 3339)"))
}

/// `YYYY-MM-DD` for a midnight UTC (what `parse` makes of a date), else
/// `YYYY-MM-DD HH:MM:SS UTC`; the raw number if it is out of the calendar's range.
pub fn show(t: UnixSeconds) -> String {
    if t.rem_euclid(86_400) == 0 {
        tally_proto::time_text::day(t)
    } else {
        tally_proto::time_text::second(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_midnight_utc_and_instants_keep_their_offset() {
        assert_eq!(parse("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse("2026-01-01").unwrap(), 1_767_225_600);
        assert_eq!(parse("1970-01-01T00:01:00Z").unwrap(), 60);
        assert_eq!(parse("1970-01-01T02:00:00+02:00").unwrap(), 0);
    }

    #[test]
    fn non_dates_are_refused() {
        for bad in [
            "2026-02-30",
            "2026-1-1",
            "tomorrow",
            "",
            "2026-01-01T00:00:00",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("not a date"), "{bad}: {err}");
        }
    }

    #[test]
    fn shown_as_dates_when_midnight() {
        assert_eq!(show(1_767_225_600), "2026-01-01");
        assert_eq!(show(1_767_225_661), "2026-01-01 00:01:01 UTC");
        assert_eq!(show(i64::MAX), i64::MAX.to_string());
    }
}
