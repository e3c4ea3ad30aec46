//! Email through a real SMTP exchange (lettre): STARTTLS, TLS or plain, optional login, To/CC/BCC,
//! and a plain-text plus an HTML part.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tally_proto::admin::{EmailSettings, SmtpTls};

use crate::state::AppState;

/// Settings key of the email settings (JSON).
pub const EMAIL_KEY: &str = "alerts.email";

/// The saved email settings, if any.
pub async fn settings(state: &AppState) -> Result<Option<EmailSettings>, String> {
    // Opened here: the setting is sealed in the store (see `crate::secrets`).
    match crate::secrets::load(state, EMAIL_KEY)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| format!("saved email settings are damaged: {e}")),
        None => Ok(None),
    }
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse()
        .map_err(|e| format!("{field}: `{text}` is not an email address ({e})"))
}

/// Checks settings before they are saved; the message names the field.
pub fn validate(s: &EmailSettings) -> Result<(), String> {
    if s.host.trim().is_empty() {
        return Err("host: required".into());
    }
    if s.port == 0 {
        return Err("port: required".into());
    }
    mailbox("sender", &s.sender)?;
    if s.to.is_empty() {
        return Err("to: at least one recipient".into());
    }
    for (field, list) in [("to", &s.to), ("cc", &s.cc), ("bcc", &s.bcc)] {
        for a in list {
            mailbox(field, a)?;
        }
    }
    if s.username.is_some() != s.password.is_some() {
        return Err("username and password go together".into());
    }
    Ok(())
}

/// Sends one message, giving up after `deadline` in total (connection, TLS and every reply of
/// the server included); the error says what failed (connection, TLS, authentication, address,
/// no answer in time).
pub async fn send_within(
    s: &EmailSettings,
    subject: &str,
    text: &str,
    html: &str,
    deadline: Duration,
) -> Result<(), String> {
    let peer = format!("the SMTP server {}:{}", s.host.trim(), s.port);
    super::delivery::within(deadline, &peer, send(s, subject, text, html, deadline))
        .await
        .map_err(|e| format!("sending through {}:{} failed: {e}", s.host.trim(), s.port))
}

/// One SMTP exchange. lettre's timeout bounds each command, not the exchange: a server that
/// answers slowly could hold it for many times that, hence [`send_within`].
async fn send(
    s: &EmailSettings,
    subject: &str,
    text: &str,
    html: &str,
    timeout: Duration,
) -> Result<(), String> {
    validate(s)?;
    let mut message = Message::builder()
        .from(mailbox("sender", &s.sender)?)
        .subject(subject);
    for a in &s.to {
        message = message.to(mailbox("to", a)?);
    }
    for a in &s.cc {
        message = message.cc(mailbox("cc", a)?);
    }
    for a in &s.bcc {
        message = message.bcc(mailbox("bcc", a)?);
    }
    let message = message
        .multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        ))
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let builder = match s.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.trim()),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(s.host.trim())
            .map_err(|e| format!("cannot set up STARTTLS to {}: {e}", s.host))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(s.host.trim())
            .map_err(|e| format!("cannot set up TLS to {}: {e}", s.host))?,
    };
    let mut builder = builder.port(s.port).timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Escapes text for the HTML part.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
