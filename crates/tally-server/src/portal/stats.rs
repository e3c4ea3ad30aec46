//! The statistics page and its CSV export: usage per day or hour, per handshake code and
//! feature, over the last N days.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tally_store::UsageFilter;

use super::auth::require;
use super::{Nav, PageResult, chart, render};
use crate::service::stats::format_day;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct StatsQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    feature: String,
    #[serde(default)]
    days: Option<String>,
    #[serde(default)]
    by: String,
    #[serde(default)]
    item: String,
}

/// The query as shown back in the form, after clamping.
pub struct Shown {
    code: String,
    item: String,
    feature: String,
    days: i64,
    by: &'static str,
}

fn normalize(q: StatsQuery) -> Shown {
    let days = q
        .days
        .as_deref()
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(30)
        .clamp(1, 366);
    Shown {
        code: q.code,
        item: q.item,
        feature: q.feature,
        days,
        by: if q.by == "hour" { "hour" } else { "day" },
    }
}

/// Rows (period label, code, feature, count) and chart bars (period label, total).
async fn collect(
    state: &AppState,
    q: &Shown,
) -> Result<(Vec<(String, String, String, u64)>, Vec<(String, u64)>), super::PageError> {
    let today = state.now().div_euclid(86_400);
    let from = today - (q.days - 1);
    let filter = UsageFilter {
        from_day: Some(from),
        to_day: Some(today),
        handshake_code: (!q.code.is_empty()).then(|| q.code.clone()),
    };
    let keep = |feature: &str| q.feature.is_empty() || q.feature == feature;
    // One sample per (hour, scope, feature), where the scope is the code or, per item, the item.
    let samples: Vec<(i64, String, String, u64)> = if q.item.is_empty() {
        state
            .store
            .usage_by_hour(filter)
            .await?
            .into_iter()
            .map(|u| (u.hour, u.handshake_code, u.feature, u.count))
            .collect()
    } else {
        state
            .store
            .usage_by_item_hour(filter, Some(q.item.clone()))
            .await?
            .into_iter()
            .map(|u| (u.hour, u.item_id, u.feature, u.count))
            .collect()
    };
    let per_hour = q.by == "hour";
    let label = |hour: i64| {
        if per_hour {
            format!(
                "{} {:02}h",
                format_day(hour.div_euclid(24)),
                hour.rem_euclid(24)
            )
        } else {
            format_day(hour.div_euclid(24))
        }
    };
    let (first, buckets) = if per_hour {
        (from * 24, (today - from + 1) * 24)
    } else {
        (from, today - from + 1)
    };
    let mut bars: Vec<(String, u64)> = (0..buckets)
        .map(|i| {
            (
                label(if per_hour {
                    first + i
                } else {
                    (first + i) * 24
                }),
                0,
            )
        })
        .collect();
    let mut totals: std::collections::BTreeMap<(i64, String, String), u64> =
        std::collections::BTreeMap::new();
    for (hour, scope, feature, count) in samples.into_iter().filter(|s| keep(&s.2)) {
        let bucket = if per_hour { hour } else { hour.div_euclid(24) };
        if let Some(bar) = usize::try_from(bucket - first)
            .ok()
            .and_then(|i| bars.get_mut(i))
        {
            bar.1 += count;
        }
        *totals.entry((bucket, scope, feature)).or_insert(0) += count;
    }
    let rows = totals
        .into_iter()
        .map(|((bucket, scope, feature), count)| {
            (
                label(if per_hour { bucket } else { bucket * 24 }),
                scope,
                feature,
                count,
            )
        })
        .collect();
    Ok((rows, bars))
}

#[derive(Template)]
#[template(path = "statistics.html")]
struct StatsPage {
    nav: Nav,
    query: Shown,
    /// The CSV export of what the page shows, its query encoded.
    csv_href: String,
    codes: Vec<String>,
    items: Vec<String>,
    features: Vec<String>,
    chart: String,
    rows: Vec<(String, String, String, u64)>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StatsQuery>,
) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let query = normalize(q);
    let (rows, bars) = collect(&state, &query).await?;
    let codes = state
        .store
        .handshakes()
        .await?
        .into_iter()
        .map(|h| h.code)
        .collect();
    let mut features: Vec<String> = state
        .store
        .usage_by_day(UsageFilter::default())
        .await?
        .into_iter()
        .map(|u| u.feature)
        .collect();
    features.sort();
    features.dedup();
    let items = state
        .store
        .items(state.now())
        .await?
        .into_iter()
        .map(|i| i.item.id)
        .collect();
    let chart = chart::bars(&format!("Usage per {}", query.by), &bars);
    Ok(render(&StatsPage {
        nav: Nav {
            signed_in: true,
            page: "statistics",
            csrf: s.csrf,
            notice: None,
            error: None,
        },
        csv_href: csv_href(&query),
        query,
        codes,
        items,
        features,
        chart,
        rows,
    }))
}

/// A cell as a spreadsheet must show it: one that starts like a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return before one) gets a leading `'`, so a feature named `=HYPERLINK(…)`
/// is text, not something the spreadsheet runs.
fn neutralized(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The rows as CSV (quoted where needed by the `csv` crate), every text cell neutralized.
fn csv_text(
    header: [&str; 4],
    rows: &[(String, String, String, u64)],
) -> Result<String, super::PageError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(header)?;
    for (period, code, feature, count) in rows {
        out.write_record([
            neutralized(period).as_ref(),
            neutralized(code).as_ref(),
            neutralized(feature).as_ref(),
            count.to_string().as_str(),
        ])?;
    }
    let bytes = out.into_inner().map_err(|e| e.error().to_string())?;
    Ok(String::from_utf8(bytes)?)
}

/// The address of the CSV export of `query`, every value encoded.
fn csv_href(query: &Shown) -> String {
    let days = query.days.to_string();
    let pairs = [
        ("code", query.code.as_str()),
        ("feature", query.feature.as_str()),
        ("days", days.as_str()),
        ("by", query.by),
        ("item", query.item.as_str()),
    ];
    format!(
        "/statistics.csv?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

pub async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StatsQuery>,
) -> PageResult {
    if let Err(r) = require(&state, &headers).await {
        return Ok(r);
    }
    let query = normalize(q);
    let (rows, _) = collect(&state, &query).await?;
    let scope = if query.item.is_empty() {
        "handshake_code"
    } else {
        "item_id"
    };
    let out = csv_text([query.by, scope, "feature", "count"], &rows)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tally-usage.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
