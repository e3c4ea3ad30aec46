//! Webhooks: each alert is posted as JSON to every configured URL, signed with HMAC-SHA256 of the
//! body (`X-Tally-Signature: sha256=<hex>`); a failed post is retried by the delivery queue
//! (`delivery.rs`).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use tally_proto::admin::WebhookSettings;

use crate::state::AppState;

/// Settings key of the webhook settings (JSON).
pub const WEBHOOK_KEY: &str = "alerts.webhooks";

pub async fn settings(state: &AppState) -> Result<WebhookSettings, String> {
    // Opened here: the setting is sealed in the store (see `crate::secrets`).
    match crate::secrets::load(state, WEBHOOK_KEY)
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

/// Posts `body` to `url`, signed with the settings' secret, giving up after `deadline` in total
/// (connection, TLS, the answer). Anything but a 2xx answer is a failure.
pub async fn post(
    s: &WebhookSettings,
    url: &str,
    body: Vec<u8>,
    deadline: Duration,
) -> Result<(), String> {
    let sig = signature(&s.secret, &body);
    let target = url.to_owned();
    // ureq blocks: it runs on the blocking pool with its own global timeout, so that the thread
    // is freed by then too; the async deadline answers the caller even if it were not.
    let exchange = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(deadline))
            .build()
            .into();
        let resp = agent
            .post(&target)
            .header("Content-Type", "application/json")
            .header("X-Tally-Signature", &sig)
            .send(&body[..])
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", resp.status()))
        }
    });
    super::delivery::within(deadline, url, async {
        exchange.await.map_err(|e| e.to_string())?
    })
    .await
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
