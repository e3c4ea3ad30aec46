//! The email and webhook settings page (with "send test email") and the alert history.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::HeaderMap;
use serde::Deserialize;
use tally_proto::admin::{EmailSettings, SmtpTls, WebhookSettings};

use super::auth::{audit, check_csrf, require};
use super::{Nav, PageResult, lines, render, see_other, when};
use crate::alerts::{mail, webhook};
use crate::service::alerting;
use crate::state::AppState;

#[derive(Default)]
struct EmailForm {
    host: String,
    port: String,
    tls: &'static str,
    sender: String,
    username: String,
    has_password: bool,
    to: String,
    cc: String,
    bcc: String,
}

struct HookForm {
    urls: String,
    has_secret: bool,
}

#[derive(Template)]
#[template(path = "email.html")]
struct EmailPage {
    nav: Nav,
    form: EmailForm,
    hooks: HookForm,
}

fn tls_name(t: SmtpTls) -> &'static str {
    match t {
        SmtpTls::None => "none",
        SmtpTls::Starttls => "starttls",
        SmtpTls::Tls => "tls",
    }
}

async fn email_page(state: &AppState, nav: Nav, form: Option<EmailForm>) -> PageResult {
    let form = match form {
        Some(f) => f,
        None => match mail::settings(state).await? {
            Some(s) => EmailForm {
                host: s.host,
                port: s.port.to_string(),
                tls: tls_name(s.tls),
                sender: s.sender,
                username: s.username.unwrap_or_default(),
                has_password: s.password.is_some(),
                to: s.to.join("\n"),
                cc: s.cc.join("\n"),
                bcc: s.bcc.join("\n"),
            },
            None => EmailForm {
                port: "587".into(),
                tls: "starttls",
                ..Default::default()
            },
        },
    };
    let saved = webhook::settings(state).await?;
    let hooks = HookForm {
        urls: saved.urls.join("\n"),
        has_secret: !saved.secret.is_empty(),
    };
    Ok(render(&EmailPage { nav, form, hooks }))
}

fn nav(csrf: &str) -> Nav {
    Nav {
        signed_in: true,
        page: "email",
        csrf: csrf.to_owned(),
        notice: None,
        error: None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<super::pages::Notice>,
) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let mut nav = nav(&s.csrf);
    nav.notice = super::pages::notice_text(&q);
    email_page(&state, nav, None).await
}

#[derive(Deserialize)]
pub struct EmailFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cc: String,
    #[serde(default)]
    bcc: String,
    #[serde(default)]
    action: String,
}

pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<EmailFields>, FormRejection>,
) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let mut nav = nav(&s.csrf);
    let Ok(Form(f)) = form else {
        nav.error = Some("The form was incomplete.".into());
        return email_page(&state, nav, None).await;
    };
    let tls = match f.tls.as_str() {
        "none" => SmtpTls::None,
        "tls" => SmtpTls::Tls,
        _ => SmtpTls::Starttls,
    };
    let had_password = mail::settings(&state)
        .await?
        .is_some_and(|o| o.password.is_some());
    let kept = EmailForm {
        host: f.host.clone(),
        port: f.port.clone(),
        tls: tls_name(tls),
        sender: f.sender.clone(),
        username: f.username.clone(),
        has_password: had_password,
        to: f.to.clone(),
        cc: f.cc.clone(),
        bcc: f.bcc.clone(),
    };
    if !check_csrf(&s, &headers, &f.csrf) {
        nav.error = Some("The form expired: try again.".into());
        return email_page(&state, nav, Some(kept)).await;
    }
    let Ok(port) = f.port.trim().parse::<u16>() else {
        nav.error = Some("Port: a number from 1 to 65535.".into());
        return email_page(&state, nav, Some(kept)).await;
    };
    let username = (!f.username.trim().is_empty()).then(|| f.username.trim().to_owned());
    let password = if !f.password.is_empty() {
        Some(f.password)
    } else if username.is_some() && had_password {
        Some("********".into())
    } else {
        None
    };
    let settings = EmailSettings {
        host: f.host.trim().to_owned(),
        port,
        tls,
        sender: f.sender.trim().to_owned(),
        username,
        password,
        to: lines(&f.to),
        cc: lines(&f.cc),
        bcc: lines(&f.bcc),
    };
    if let Err(e) = alerting::save_email(&state, settings).await {
        nav.error = Some(format!("Not saved: {}", e.message));
        return email_page(&state, nav, Some(kept)).await;
    }
    audit(
        &state,
        "email.settings",
        format!("{}:{}", f.host.trim(), port),
    )
    .await;
    if f.action == "test" {
        if let Err(e) = alerting::test_email(&state).await {
            nav.error = Some(format!("Saved, but the test email failed: {}", e.message));
            return email_page(&state, nav, None).await;
        }
        return Ok(see_other("/email?notice=tested"));
    }
    Ok(see_other("/email?notice=saved"))
}

#[derive(Deserialize)]
pub struct HookFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    urls: String,
    #[serde(default)]
    secret: String,
}

pub async fn save_webhooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<HookFields>, FormRejection>,
) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let mut nav = nav(&s.csrf);
    let Ok(Form(f)) = form.map_err(|_| ()) else {
        return Ok(see_other("/email"));
    };
    if !check_csrf(&s, &headers, &f.csrf) {
        nav.error = Some("The form expired: try again.".into());
        return email_page(&state, nav, None).await;
    }
    let secret = if f.secret.is_empty() {
        "********".to_owned()
    } else {
        f.secret
    };
    if let Err(e) = alerting::save_webhooks(
        &state,
        WebhookSettings {
            urls: lines(&f.urls),
            secret,
        },
    )
    .await
    {
        nav.error = Some(format!("Webhooks not saved: {}", e.message));
        return email_page(&state, nav, None).await;
    }
    audit(&state, "webhooks.settings", String::new()).await;
    Ok(see_other("/email?notice=saved"))
}

/// One alert as the history page shows it.
struct AlertLine {
    when: String,
    subject: String,
    body: String,
    email: String,
    webhooks: String,
    /// (when, channel, outcome), oldest first.
    attempts: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: Nav,
    alerts: Vec<AlertLine>,
    minutes: u64,
}

pub async fn history(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let alerts = alerting::history(&state, 200)
        .await?
        .into_iter()
        .map(|a| AlertLine {
            when: when(a.at),
            subject: a.subject,
            body: a.body,
            email: a.email,
            webhooks: a.webhooks,
            attempts: a
                .attempts
                .into_iter()
                .map(|t| (when(t.at), t.channel, t.outcome))
                .collect(),
        })
        .collect();
    Ok(render(&AlertsPage {
        nav: Nav {
            signed_in: true,
            page: "alerts",
            csrf: s.csrf,
            notice: None,
            error: None,
        },
        alerts,
        minutes: state.settings.alert_interval_seconds / 60,
    }))
}
