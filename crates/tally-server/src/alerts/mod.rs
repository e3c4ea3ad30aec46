//! Usage alerts and error notices. An evaluator runs every `alert_interval_seconds` (10 minutes by
//! default) over every item and handshake code and raises one alert per evaluation listing every
//! threshold newly crossed (edge-triggered, levels kept in the store so a restart does not resend).
//! Internal errors reach the admin within seconds, at most one notice per
//! `error_notice_interval_seconds`. Alerts are stored with their deliveries and sent by the
//! delivery queue ([`delivery`]), retried until sent or a day has passed.

pub mod delivery;
pub mod mail;
pub mod webhook;

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tally_core::alerts::{Kind, crossed, describe, expiry_level, failure_level, usage_level};

use crate::state::AppState;

/// One threshold crossed.
#[derive(Debug, Clone, Serialize)]
pub struct Condition {
    /// `item` or `handshake_code`.
    pub scope: &'static str,
    pub id: String,
    pub kind: &'static str,
    pub level: u8,
    pub text: String,
}

/// The JSON event posted to webhooks (the delivery adds `alert_id`).
#[derive(Serialize)]
struct Event<'a> {
    event: &'static str,
    at: tally_proto::UnixSeconds,
    server_uuid: &'a str,
    subject: &'a str,
    conditions: &'a [Condition],
}

/// Lease that keeps the evaluations of instances sharing a store one at a time: the levels one
/// writes are read by the next, so a threshold is notified once across them all.
const EVALUATION_LEASE: &str = "alert-evaluation";

/// Longest an evaluation may hold the lease (its instance may die holding it).
const EVALUATION_LEASE_SECONDS: i64 = 300;

/// What became of a request to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// Evaluated; the id of the alert sent, if a threshold was crossed.
    Done(Option<i64>),
    /// Another instance was evaluating (and wrote the levels this one would have).
    Busy,
}

/// Runs one evaluation at the state's clock, unless another instance sharing the store is
/// evaluating: then waits up to `wait` for it to finish.
pub async fn evaluate_once(state: &AppState, wait: Duration) -> Result<Evaluation, String> {
    // Each evaluation holds the lease under a name of its own, so that two evaluations of one
    // instance (the periodic one and one asked through the API) exclude each other too.
    let holder = format!(
        "{}/{}",
        state.instance,
        tally_crypto::random_id().map_err(|e| e.to_string())?
    );
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = state.now();
        let held = state
            .store
            .hold_lease(
                EVALUATION_LEASE,
                &holder,
                now,
                now.saturating_add(EVALUATION_LEASE_SECONDS),
            )
            .await
            .map_err(|e| e.to_string())?;
        if held {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Evaluation::Busy);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outcome = evaluate(state).await;
    if let Err(e) = state.store.release_lease(EVALUATION_LEASE, &holder).await {
        tracing::warn!(error = %e, "cannot release the alert evaluation lease; it expires by itself");
    }
    // Sends the new alert, and any retry that fell due, without waiting for either.
    delivery::kick(state);
    outcome.map(Evaluation::Done)
}

/// One evaluation; returns the id of the alert sent, if any.
async fn evaluate(state: &AppState) -> Result<Option<i64>, String> {
    let now = state.now();
    let previous: HashMap<String, u8> = state
        .store
        .alert_levels()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|l| (l.key, l.level))
        .collect();
    let mut levels: Vec<tally_store::AlertLevel> = Vec::new();
    let mut conditions = Vec::new();
    let mut watch = |scope: &'static str, id: &str, kind: Kind, level: u8, detail: String| {
        let key = format!("{scope}:{id}:{}", kind.as_str());
        if crossed(previous.get(&key).copied().unwrap_or(0), level) {
            conditions.push(Condition {
                scope,
                id: id.to_owned(),
                kind: kind.as_str(),
                level,
                text: format!("{} {detail}", describe(kind, level)),
            });
        }
        levels.push(tally_store::AlertLevel { key, level });
    };

    for stored in state.store.items(now).await.map_err(|e| e.to_string())? {
        let item = &stored.item;
        let what = format!(
            "({} {}, {} of {})",
            item.product,
            item.license_type.as_str(),
            stored.used,
            item.quantity
        );
        watch(
            "item",
            &item.id,
            Kind::Usage,
            usage_level(stored.used, item.quantity),
            what.clone(),
        );
        if item.grace_percent > 0 {
            watch(
                "item",
                &item.id,
                Kind::Grace,
                u8::from(stored.used > item.quantity),
                what.clone(),
            );
        }
        watch(
            "item",
            &item.id,
            Kind::Expiry,
            expiry_level(item.end, item.grace_end(), now),
            format!(
                "(ends {}, grace until {})",
                crate::portal::when(item.end),
                crate::portal::when(item.grace_end())
            ),
        );
    }
    state
        .outcomes
        .flush(&*state.store)
        .await
        .map_err(|e| e.to_string())?;
    for tally_store::OutcomeTotals {
        handshake_code: code,
        ok,
        failed,
    } in state
        .store
        .auth_outcomes(now - 3600)
        .await
        .map_err(|e| e.to_string())?
    {
        watch(
            "handshake_code",
            &code,
            Kind::Failures,
            failure_level(ok, failed),
            format!("({failed} of {})", ok + failed),
        );
    }

    let alert = if conditions.is_empty() {
        None
    } else {
        Some(notify(state, &conditions).await?)
    };
    state
        .store
        .set_alert_levels(levels)
        .await
        .map_err(|e| e.to_string())?;
    Ok(alert)
}

/// Records the alert in the history with a delivery for the email and each webhook; the
/// delivery queue sends them.
async fn notify(state: &AppState, conditions: &[Condition]) -> Result<i64, String> {
    let now = state.now();
    let subject = format!(
        "Tally: {} license alert{}",
        conditions.len(),
        if conditions.len() == 1 { "" } else { "s" }
    );
    let lines: Vec<String> = conditions
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                if c.scope == "item" {
                    "License item"
                } else {
                    "Handshake code"
                },
                c.id,
                c.text
            )
        })
        .collect();
    let body = lines.join("\n");
    let text = format!(
        "Tally server {} at {}:\n\n{body}\n",
        state.identity.uuid,
        crate::portal::when(now)
    );
    let html = format!(
        "<p>Tally server <code>{}</code> at {}:</p><ul>{}</ul>",
        state.identity.uuid,
        crate::portal::when(now),
        lines
            .iter()
            .map(|l| format!("<li>{}</li>", mail::html_escape(l)))
            .collect::<String>()
    );
    let (email, mut deliveries) = queue_email(state, &subject, &text, &html).await;
    let event = Event {
        event: "tally.alert",
        at: now,
        server_uuid: &state.identity.uuid,
        subject: &subject,
        conditions,
    };
    let webhooks = match (
        webhook::settings(state).await,
        serde_json::to_string(&event),
    ) {
        (Ok(s), _) if s.urls.is_empty() => "not configured".to_owned(),
        (Ok(s), Ok(payload)) => {
            deliveries.extend(s.urls.into_iter().map(|url| tally_store::NewDelivery {
                channel: tally_store::DeliveryChannel::Webhook,
                target: url,
                payload: payload.clone(),
            }));
            "pending".to_owned()
        }
        (Err(e), _) => e,
        (_, Err(e)) => e.to_string(),
    };
    state
        .store
        .record_alert(tally_store::NewAlert {
            at: now,
            subject,
            body,
            email,
            webhooks,
            deliveries,
        })
        .await
        .map_err(|e| e.to_string())
}

/// The email delivery to queue, if email is configured, and what the history shows meanwhile:
/// `pending`, `not configured`, or why the settings cannot be read.
async fn queue_email(
    state: &AppState,
    subject: &str,
    text: &str,
    html: &str,
) -> (String, Vec<tally_store::NewDelivery>) {
    match mail::settings(state).await {
        Ok(Some(_)) => {
            let message = delivery::QueuedEmail {
                subject: subject.to_owned(),
                text: text.to_owned(),
                html: html.to_owned(),
            };
            match serde_json::to_string(&message) {
                Ok(payload) => (
                    "pending".to_owned(),
                    vec![tally_store::NewDelivery {
                        channel: tally_store::DeliveryChannel::Email,
                        target: String::new(),
                        payload,
                    }],
                ),
                Err(e) => (format!("cannot queue the email: {e}"), Vec::new()),
            }
        }
        Ok(None) => ("not configured".to_owned(), Vec::new()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the email settings for an alert");
            (e, Vec::new())
        }
    }
}

/// Starts the evaluator and the error notifier in the background.
pub fn spawn(state: &AppState) {
    let every = Duration::from_secs(state.settings.alert_interval_seconds.max(1));
    let s = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            match evaluate_once(&s, Duration::ZERO).await {
                Ok(Evaluation::Done(_)) => {}
                Ok(Evaluation::Busy) => {
                    tracing::debug!("another instance is evaluating alerts");
                }
                Err(e) => {
                    tracing::error!(error = %e, "alert evaluation failed");
                    s.internal_error(format!("alert evaluation failed: {e}"));
                }
            }
        }
    });
    let s = state.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(crate::outcomes::FLUSH_EVERY_SECONDS);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            if let Err(e) = s.outcomes.flush(&*s.store).await {
                tracing::error!(error = %e, "cannot write authorization outcomes");
            }
        }
    });
    delivery::spawn(state);
    if state.store.shared() {
        spawn_sweeper(state);
    }
    if let Some(mut errors) = state.take_error_receiver() {
        let s = state.clone();
        tokio::spawn(async move {
            let min_interval = Duration::from_secs(s.settings.error_notice_interval_seconds);
            let mut last_sent: Option<tokio::time::Instant> = None;
            while let Some(first) = errors.recv().await {
                let mut batch = vec![first];
                // Gather what arrives together, and wait out the rate limit, still gathering.
                let mut until = tokio::time::Instant::now() + Duration::from_secs(3);
                if let Some(t) = last_sent {
                    until = until.max(t + min_interval);
                }
                while let Ok(Some(more)) = tokio::time::timeout_at(until, errors.recv()).await {
                    batch.push(more);
                }
                last_sent = Some(tokio::time::Instant::now());
                notify_errors(&s, &batch).await;
            }
        });
    }
}

/// Forgets, once a minute, the used envelopes, session windows and leases that expired in the
/// shared store (a single server keeps them in memory and forgets them there).
fn spawn_sweeper(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(60);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            match s.store.sweep_expired(s.now()).await {
                Ok(n) => tracing::debug!(removed = n, "swept expired replay state"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep expired replay state"),
            }
        }
    });
}

async fn notify_errors(state: &AppState, batch: &[String]) {
    let subject = format!(
        "Tally: {} internal error{}",
        batch.len(),
        if batch.len() == 1 { "" } else { "s" }
    );
    let shown: Vec<&String> = batch.iter().take(20).collect();
    let mut body = shown
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if batch.len() > shown.len() {
        body.push_str(&format!("\n… and {} more", batch.len() - shown.len()));
    }
    let text = format!(
        "Tally server {}:\n\n{body}\n\nThe server log has the details.\n",
        state.identity.uuid
    );
    let html = format!(
        "<p>Tally server <code>{}</code>:</p><pre>{}</pre>",
        state.identity.uuid,
        mail::html_escape(&body)
    );
    let (email, deliveries) = queue_email(state, &subject, &text, &html).await;
    let recorded = state
        .store
        .record_alert(tally_store::NewAlert {
            at: state.now(),
            subject: subject.clone(),
            body,
            email,
            webhooks: "not sent for internal errors".to_owned(),
            deliveries,
        })
        .await;
    match recorded {
        Ok(_) => delivery::kick(state),
        Err(e) => {
            // The store itself may be what failed (a full disk): send once, unqueued.
            tracing::error!(error = %e, "cannot record the error notice; sending it once");
            if let Ok(Some(settings)) = mail::settings(state).await
                && let Err(e) =
                    mail::send_within(&settings, &subject, &text, &html, delivery::deadline(state))
                        .await
            {
                tracing::warn!(error = %e, "the error notice could not be sent");
            }
        }
    }
}
