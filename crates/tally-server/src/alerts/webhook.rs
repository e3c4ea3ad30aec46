//! Webhooks: each alert is posted as JSON to every configured URL, signed with HMAC-SHA256 of the
//! body (`X-Tally-Signature: sha256=<hex>`), and retried with exponential backoff.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use tally_proto::admin::WebhookSettings;

use crate::state::AppState;

/// Settings key of the webhook settings (JSON).
pub const WEBHOOK_KEY: &str = "alerts.webhooks";
/// Attempts per URL before the failure is recorded.
pub const ATTEMPTS: u32 = 4;

pub async fn settings(state: &AppState) -> Result<WebhookSettings, String> {
    match state
        .store
        .get_setting(WEBHOOK_KEY)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| format!("saved webhook settings are damaged: {e}")),
        None => Ok(WebhookSettings::default()),
    }
}

pub fn validate(s: &WebhookSettings) -> Result<(), String> {
    for u in &s.urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!("urls: `{u}` must start with http:// or https://"));
        }
    }
    if !s.urls.is_empty() && s.secret.len() < 16 {
        return Err("secret: at least 16 characters, to sign the events".into());
    }
    Ok(())
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Posts `body` to every URL; returns `sent` or the failures, one per URL.
pub async fn deliver(s: &WebhookSettings, body: Vec<u8>, backoff: Duration) -> String {
    if s.urls.is_empty() {
        return "not configured".into();
    }
    let sig = signature(&s.secret, &body);
    let mut failures = Vec::new();
    for url in &s.urls {
        let mut delay = backoff;
        let mut last = String::new();
        let mut ok = false;
        for attempt in 1..=ATTEMPTS {
            match post(url.clone(), body.clone(), sig.clone()).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(url = %url, attempt, error = %e, "webhook delivery failed");
                    last = e;
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        if !ok {
            failures.push(format!("{url}: {last} (after {ATTEMPTS} attempts)"));
        }
    }
    if failures.is_empty() {
        "sent".into()
    } else {
        failures.join("; ")
    }
}

async fn post(url: String, body: Vec<u8>, sig: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let resp = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Tally-Signature", &sig)
            .send(&body[..])
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", resp.status()))
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
