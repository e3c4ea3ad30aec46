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
use crate::app::AppState;
use crate::service::stats::format_day;

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
}

/// The query as shown back in the form, after clamping.
pub struct Shown {
    code: String,
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
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    if q.by == "hour" {
        for h in (from * 24)..((today + 1) * 24) {
            bars.push((
                format!("{} {:02}h", format_day(h.div_euclid(24)), h.rem_euclid(24)),
                0u64,
            ));
        }
        for u in state
            .store
            .usage_by_hour(filter)
            .await?
            .into_iter()
            .filter(|u| keep(&u.feature))
        {
            let label = format!(
                "{} {:02}h",
                format_day(u.hour.div_euclid(24)),
                u.hour.rem_euclid(24)
            );
            if let Some(bar) = usize::try_from(u.hour - from * 24)
                .ok()
                .and_then(|i| bars.get_mut(i))
            {
                bar.1 += u.count;
            }
            rows.push((label, u.handshake_code, u.feature, u.count));
        }
    } else {
        for d in from..=today {
            bars.push((format_day(d), 0u64));
        }
        for u in state
            .store
            .usage_by_day(filter)
            .await?
            .into_iter()
            .filter(|u| keep(&u.feature))
        {
            if let Some(bar) = usize::try_from(u.day - from)
                .ok()
                .and_then(|i| bars.get_mut(i))
            {
                bar.1 += u.count;
            }
            rows.push((format_day(u.day), u.handshake_code, u.feature, u.count));
        }
    }
    Ok((rows, bars))
}

#[derive(Template)]
#[template(path = "statistics.html")]
struct StatsPage {
    nav: Nav,
    query: Shown,
    codes: Vec<String>,
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
    let chart = chart::bars(&format!("Usage per {}", query.by), &bars);
    Ok(render(&StatsPage {
        nav: Nav {
            signed_in: true,
            page: "statistics",
            csrf: s.csrf,
            notice: None,
            error: None,
        },
        query,
        codes,
        features,
        chart,
        rows,
    }))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
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
    let mut out = format!("{},handshake_code,feature,count\n", query.by);
    for (period, code, feature, count) in rows {
        out.push_str(&format!(
            "{},{},{},{count}\n",
            csv_field(&period),
            csv_field(&code),
            csv_field(&feature)
        ));
    }
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
