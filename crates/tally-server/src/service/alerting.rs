//! Saving the alert channels (email, webhooks), sending a test email, and the alert history with
//! every delivery attempt.

use tally_proto::ErrorCode;
use tally_proto::admin::{AlertView, DeliveryAttemptView, EmailSettings, WebhookSettings};
use tally_store::DeliveryChannel;

use crate::alerts::{delivery, mail, webhook};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The mask the API shows for saved secrets; receiving it back keeps the saved value.
const MASK: &str = "********";

/// Validates and saves email settings, keeping the saved password when the mask comes back.
pub async fn save_email(state: &AppState, mut new: EmailSettings) -> ApiResult<EmailSettings> {
    if new.password.as_deref() == Some(MASK) {
        let old = mail::settings(state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
        new.password = old.and_then(|o| o.password);
    }
    mail::validate(&new).map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?;
    let json = serde_json::to_string(&new)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    // Sealed: the settings hold a secret (see `crate::secrets`).
    crate::secrets::save(state, mail::EMAIL_KEY, &json).await?;
    Ok(new)
}

pub async fn save_webhooks(state: &AppState, mut new: WebhookSettings) -> ApiResult<()> {
    if new.secret == MASK {
        new.secret = webhook::settings(state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, e))?
            .secret;
    }
    webhook::validate(&new).map_err(|e| ApiError::new(ErrorCode::InvalidInput, e))?;
    let json = serde_json::to_string(&new)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    // Sealed: the settings hold a secret (see `crate::secrets`).
    crate::secrets::save(state, webhook::WEBHOOK_KEY, &json).await?;
    Ok(())
}

/// Sends a test email with the saved settings.
pub async fn test_email(state: &AppState) -> ApiResult<()> {
    let Some(settings) = mail::settings(state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, e))?
    else {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "email is not configured yet: save the SMTP settings first",
        ));
    };
    let text = format!(
        "This is a test email from Tally server {}. Alerts will arrive like this.\n",
        state.identity.uuid
    );
    let html = format!(
        "<p>This is a test email from Tally server <code>{}</code>. Alerts will arrive like this.</p>",
        state.identity.uuid
    );
    // Sent by a task of its own under the delivery deadline: the request gets the outcome within
    // the deadline, and a client that goes away does not cut the exchange half-way.
    let deadline = delivery::deadline(state);
    let exchange = tokio::spawn(async move {
        mail::send_within(&settings, "Tally test email", &text, &html, deadline).await
    });
    match exchange.await {
        Ok(outcome) => outcome.map_err(|e| ApiError::new(ErrorCode::EmailFailed, e)),
        Err(e) => {
            tracing::error!(error = %e, "the test email task failed");
            Err(ApiError::new(
                ErrorCode::Internal,
                format!("the test email task failed: {e}"),
            ))
        }
    }
}

/// The newest `limit` alerts with every delivery attempt, newest alert first.
pub async fn history(state: &AppState, limit: u32) -> ApiResult<Vec<AlertView>> {
    let rows = state.store.alerts(limit).await?;
    let deliveries = state
        .store
        .alert_deliveries(rows.iter().map(|a| a.id).collect())
        .await?;
    Ok(rows
        .into_iter()
        .map(|a| {
            let mut attempts: Vec<DeliveryAttemptView> = deliveries
                .iter()
                .filter(|d| d.alert_id == a.id)
                .flat_map(|d| {
                    let channel = match d.channel {
                        DeliveryChannel::Email => "email".to_owned(),
                        DeliveryChannel::Webhook => d.target.clone(),
                    };
                    d.attempts.iter().map(move |t| DeliveryAttemptView {
                        at: t.at,
                        channel: channel.clone(),
                        outcome: t.outcome.clone(),
                    })
                })
                .collect();
            attempts.sort_by_key(|t| t.at);
            AlertView {
                id: a.id,
                at: a.at,
                subject: a.subject,
                body: a.body,
                email: a.email,
                webhooks: a.webhooks,
                attempts,
            }
        })
        .collect())
}
