//! Saving the alert channels (email, webhooks) and sending a test email.

use tally_proto::ErrorCode;
use tally_proto::admin::{EmailSettings, WebhookSettings};

use crate::alerts::{mail, webhook};
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
    state.store.put_setting(mail::EMAIL_KEY, &json).await?;
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
    state.store.put_setting(webhook::WEBHOOK_KEY, &json).await?;
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
    mail::send(&settings, "Tally test email", &text, &html)
        .await
        .map_err(|e| ApiError::new(ErrorCode::EmailFailed, e))
}
