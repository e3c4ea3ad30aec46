//! The delivery queue. An alert is stored with one delivery per channel (the email, each webhook
//! URL); a background pass claims the deliveries that are due and makes one attempt at each, in
//! its own task and under a total deadline (`delivery_timeout_seconds`), so that neither a
//! request nor the alert evaluation ever waits on a mail or web server. A failed attempt is
//! retried on the schedule of [`tally_core::delivery`] until it succeeds or a day has passed;
//! every attempt is kept and shown in the alert history.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tally_store::{
    AfterAttempt, DeliveryAttempt, DeliveryChannel, DeliveryRow, DeliveryState, DueDelivery,
};

use super::{mail, webhook};
use crate::state::AppState;

/// Deliveries claimed per pass; a pass claims again until none is due.
const CLAIM_BATCH: u32 = 20;
/// How often the queue is looked at for retries that fell due.
const POLL_EVERY: Duration = Duration::from_secs(15);
/// How long a claimed delivery stays away from other claimers beyond the deadline: a claimer
/// that died leaves it due again after that.
const CLAIM_MARGIN_SECONDS: i64 = 60;

/// An email as queued: rendered once, when the alert was raised.
#[derive(Serialize, Deserialize)]
pub struct QueuedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The total time one attempt may take.
pub fn deadline(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.delivery_timeout_seconds.max(1))
}

/// Runs `attempt` under `deadline`: a server that accepts the connection and then says nothing
/// makes the attempt fail with a sentence naming `peer` and the deadline.
pub async fn within<F>(deadline: Duration, peer: &str, attempt: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>>,
{
    match tokio::time::timeout(deadline, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "{peer} did not complete the exchange within {} s (delivery_timeout_seconds)",
            deadline.as_secs()
        )),
    }
}

/// Starts the pass that picks up retries as they fall due.
pub fn spawn(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_EVERY);
        loop {
            ticks.tick().await;
            run_due(&s).await;
        }
    });
}

/// Starts a pass now, without waiting for it (after an alert was recorded).
pub fn kick(state: &AppState) {
    let s = state.clone();
    tokio::spawn(async move { run_due(&s).await });
}

/// Claims what is due and attempts it, a batch at a time, each delivery in its own task.
async fn run_due(state: &AppState) {
    let hold = i64::try_from(deadline(state).as_secs())
        .unwrap_or(i64::MAX)
        .saturating_add(CLAIM_MARGIN_SECONDS);
    loop {
        let now = state.now();
        let batch = match state
            .store
            .claim_due_deliveries(now, now.saturating_add(hold), CLAIM_BATCH)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the alert delivery queue");
                return;
            }
        };
        let full = batch.len() >= CLAIM_BATCH as usize;
        let mut attempts = tokio::task::JoinSet::new();
        for due in batch {
            attempts.spawn(attempt(state.clone(), due));
        }
        while let Some(done) = attempts.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "an alert delivery task failed");
            }
        }
        if !full {
            return;
        }
    }
}

/// What one attempt concluded, and whether to stop trying regardless of the schedule.
struct Outcome {
    result: Result<(), String>,
    final_failure: bool,
}

async fn attempt(state: AppState, due: DueDelivery) {
    let outcome = match due.channel {
        DeliveryChannel::Email => email(&state, &due.payload).await,
        DeliveryChannel::Webhook => post(&state, &due).await,
    };
    let now = state.now();
    let failed = due.attempts.saturating_add(1);
    let (after, text) = match outcome.result {
        Ok(()) => (AfterAttempt::Sent, "sent".to_owned()),
        Err(e) => {
            let next = (!outcome.final_failure)
                .then(|| tally_core::delivery::next_attempt(due.raised_at, failed, now))
                .flatten();
            tracing::warn!(
                alert = due.alert_id,
                channel = due.channel.as_str(),
                target = %due.target,
                attempt = failed,
                retry_at = ?next,
                error = %e,
                "alert delivery failed"
            );
            (next.map_or(AfterAttempt::GiveUp, AfterAttempt::RetryAt), e)
        }
    };
    let recorded = state
        .store
        .record_delivery_attempt(
            due.id,
            DeliveryAttempt {
                at: now,
                outcome: text,
            },
            after,
        )
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, alert = due.alert_id, "cannot record an alert delivery attempt");
        return;
    }
    if let Err(e) = summarize(&state, due.alert_id).await {
        tracing::warn!(error = %e, alert = due.alert_id, "cannot update the alert history");
    }
}

async fn email(state: &AppState, payload: &str) -> Outcome {
    let message: QueuedEmail = match serde_json::from_str(payload) {
        Ok(m) => m,
        Err(e) => {
            return Outcome {
                result: Err(format!("the queued message is damaged: {e}")),
                final_failure: true,
            };
        }
    };
    let result = match mail::settings(state).await {
        Ok(Some(settings)) => {
            mail::send_within(
                &settings,
                &message.subject,
                &message.text,
                &message.html,
                deadline(state),
            )
            .await
        }
        Ok(None) => Err("email is not configured any more".to_owned()),
        Err(e) => Err(e),
    };
    Outcome {
        result,
        final_failure: false,
    }
}

async fn post(state: &AppState, due: &DueDelivery) -> Outcome {
    let settings = match webhook::settings(state).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                result: Err(e),
                final_failure: false,
            };
        }
    };
    if !settings.urls.contains(&due.target) {
        return Outcome {
            result: Err("this webhook URL was removed from the settings".to_owned()),
            final_failure: true,
        };
    }
    // The event names the alert, whose id is known only once it is stored.
    let body = match serde_json::from_str::<serde_json::Value>(&due.payload) {
        Ok(serde_json::Value::Object(mut event)) => {
            event.insert("alert_id".into(), due.alert_id.into());
            serde_json::to_vec(&event).map_err(|e| e.to_string())
        }
        Ok(_) => Err("the queued event is not a JSON object".to_owned()),
        Err(e) => Err(format!("the queued event is damaged: {e}")),
    };
    match body {
        Ok(body) => Outcome {
            result: webhook::post(&settings, &due.target, body, deadline(state)).await,
            final_failure: false,
        },
        Err(e) => Outcome {
            result: Err(e),
            final_failure: true,
        },
    }
}

/// Writes what the history shows for the alert's email and webhooks from its deliveries.
async fn summarize(state: &AppState, alert_id: i64) -> Result<(), tally_store::StoreError> {
    let deliveries = state.store.alert_deliveries(vec![alert_id]).await?;
    let (emails, hooks): (Vec<&DeliveryRow>, Vec<&DeliveryRow>) = deliveries
        .iter()
        .partition(|d| d.channel == DeliveryChannel::Email);
    let email = emails.first().map(|d| describe(d));
    let webhooks = (!hooks.is_empty()).then(|| {
        let unsent: Vec<String> = hooks
            .iter()
            .filter(|d| d.state != DeliveryState::Sent)
            .map(|d| format!("{}: {}", d.target, describe(d)))
            .collect();
        if unsent.is_empty() {
            "sent".to_owned()
        } else {
            unsent.join("; ")
        }
    });
    state
        .store
        .set_alert_delivery(alert_id, email.as_deref(), webhooks.as_deref())
        .await
}

/// `sent`, `pending`, the last failure and when it is tried again, or that it was given up.
fn describe(d: &DeliveryRow) -> String {
    let tries = d.attempts.len();
    let last = d.attempts.last().map_or("", |a| a.outcome.as_str());
    match d.state {
        DeliveryState::Sent => "sent".to_owned(),
        DeliveryState::Pending if tries == 0 => "pending".to_owned(),
        DeliveryState::Pending => format!(
            "{last} (attempt {tries}; next attempt {})",
            d.next_at
                .map(crate::portal::when)
                .unwrap_or_else(|| "soon".to_owned())
        ),
        DeliveryState::Failed => format!(
            "{last} (given up after {tries} attempt{})",
            if tries == 1 { "" } else { "s" }
        ),
    }
}
