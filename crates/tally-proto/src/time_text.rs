//! Instants as people read them, always in UTC: one place for every page, alert, table and
//! command that shows a time. An instant outside the calendar's range shows as its number.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::UnixSeconds;

const DAY: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");
const MINUTE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
const SECOND: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

fn show(t: UnixSeconds, format: &[BorrowedFormatItem<'static>]) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(format).ok())
        .unwrap_or_else(|| t.to_string())
}

/// `YYYY-MM-DD`.
pub fn day(t: UnixSeconds) -> String {
    show(t, DAY)
}

/// `YYYY-MM-DD HH:MM UTC` (pages, alerts).
pub fn minute(t: UnixSeconds) -> String {
    show(t, MINUTE)
}

/// `YYYY-MM-DD HH:MM:SS UTC` (command-line output, license files).
pub fn second(t: UnixSeconds) -> String {
    show(t, SECOND)
}

/// `YYYY-MM-DD` of a day number (days since the Unix epoch).
pub fn day_number(n: i64) -> String {
    match n.checked_mul(86_400) {
        Some(t) => day(t),
        None => format!("day {n}"),
    }
}

/// The day number of a `YYYY-MM-DD` date.
pub fn parse_day(text: &str) -> Option<i64> {
    let date = time::Date::parse(text, DAY).ok()?;
    Some(
        date.midnight()
            .assume_utc()
            .unix_timestamp()
            .div_euclid(86_400),
    )
}

/// Midnight UTC of a `YYYY-MM-DD` date.
pub fn parse_midnight(text: &str) -> Option<UnixSeconds> {
    parse_day(text).map(|d| d * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_instant_three_ways_and_days_both_ways() {
        let t = 1_780_272_000 + 3_723; // 2026-06-01 01:02:03 UTC
        assert_eq!(day(t), "2026-06-01");
        assert_eq!(minute(t), "2026-06-01 01:02 UTC");
        assert_eq!(second(t), "2026-06-01 01:02:03 UTC");
        assert_eq!(day_number(t / 86_400), "2026-06-01");
        assert_eq!(parse_day("2026-06-01"), Some(t / 86_400));
        assert_eq!(parse_midnight("1969-12-31"), Some(-86_400));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(second(i64::MAX), i64::MAX.to_string());
        assert_eq!(day_number(i64::MAX), format!("day {}", i64::MAX));
    }
}
