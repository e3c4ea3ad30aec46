//! Dates on the command line: `YYYY-MM-DD` (midnight UTC) or RFC 3339.

use tally_proto::UnixSeconds;

const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn parse(text: &str) -> Result<UnixSeconds, String> {
    if let Ok(date) = time::Date::parse(text, DAY) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("`{text}` is not a date (use YYYY-MM-DD or RFC 3339)"))
}

/// `YYYY-MM-DD` for midnights, else `YYYY-MM-DD HH:MM:SS UTC`.
pub fn show(t: UnixSeconds) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) if d.time() == time::Time::MIDNIGHT => {
            d.date().format(DAY).unwrap_or_else(|_| t.to_string())
        }
        Ok(_) => crate::client::format_time(t),
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants() {
        assert_eq!(parse("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse("1970-01-01T00:01:00Z").unwrap(), 60);
        assert!(parse("2026-02-30").is_err());
        assert!(parse("tomorrow").is_err());
        assert_eq!(show(86_400), "1970-01-02");
    }
}
