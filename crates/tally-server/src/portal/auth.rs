//! Who may use the portal: first-run setup with the one-time token, sign-in with the Argon2id
//! password, session cookies (HttpOnly, SameSite=Strict) and CSRF tokens.

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tally_store::PortalSession;

use crate::passwords::{SLOWDOWN, SignInTry};
use std::net::SocketAddr;

use super::{Nav, PageResult, render, see_other};
use crate::service::password;
use crate::state::AppState;

const COOKIE: &str = "tally_session";
pub(crate) const PASSWORD_KEY: &str = "portal.password_hash";
const SESSION_SECONDS: i64 = 12 * 3600;
const MIN_PASSWORD_CHARS: usize = 10;

/// Logs the setup token while the portal has no password, so only someone who can read the
/// server log can claim it.
pub async fn announce_setup(state: &AppState) {
    match state.store.get_setting(PASSWORD_KEY).await {
        Ok(None) => tracing::warn!(
            setup_token = %state.setup_token,
            "the portal has no administrator password yet: open the portal and enter this setup token"
        ),
        Ok(Some(_)) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the portal settings"),
    }
}

fn hash_token(token: &str) -> String {
    tally_crypto::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in session of this request, if any.
pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<PortalSession>, super::PageError> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    Ok(state
        .store
        .session(&hash_token(&token), state.now())
        .await?)
}

/// Where an anonymous visitor goes: setup while no password exists, else sign-in.
pub async fn entry_point(state: &AppState) -> PageResult {
    let has_password = state.store.get_setting(PASSWORD_KEY).await?.is_some();
    Ok(see_other(if has_password { "/login" } else { "/setup" }))
}

/// The session of a signed-in admin, or the response that sends the visitor to sign in.
pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<PortalSession, Response> {
    match session(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(entry_point(state)
            .await
            .unwrap_or_else(|e| e.into_response())),
        Err(e) => Err(e.into_response()),
    }
}

/// A form of a signed-in admin must carry the session's CSRF token and come from this origin.
pub fn check_csrf(session: &PortalSession, headers: &HeaderMap, presented: &str) -> bool {
    same_origin(headers) && bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes()))
}

/// Browsers send `Origin` on form posts; when present it must name this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

pub async fn audit(state: &AppState, action: &str, detail: String) {
    crate::service::audit::record(state, "portal", action, detail).await;
}

/// Starts a session and answers with its cookie.
async fn start_session(state: &AppState, to: &str) -> PageResult {
    let token = tally_crypto::random_id()?;
    let now = state.now();
    state
        .store
        .create_session(PortalSession {
            token_hash: hash_token(&token),
            csrf: tally_crypto::random_id()?,
            created_at: now,
            expires_at: now + SESSION_SECONDS,
        })
        .await?;
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}");
    let mut resp = see_other(to);
    resp.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie)?);
    Ok(resp)
}

pub(crate) fn check_new_password(password: &str, confirm: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The password needs at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    if password.len() > 1024 {
        return Err("The password is too long.".into());
    }
    if password != confirm {
        return Err("The two passwords differ.".into());
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    nav: Nav,
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    password: String,
    confirm: String,
}

pub async fn setup_form(State(state): State<AppState>) -> PageResult {
    if state.store.get_setting(PASSWORD_KEY).await?.is_some() {
        return Ok(see_other("/login"));
    }
    Ok(render(&SetupPage {
        nav: Nav::anonymous(),
        token: String::new(),
    }))
}

pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SetupForm>, FormRejection>,
) -> PageResult {
    if state.store.get_setting(PASSWORD_KEY).await?.is_some() {
        return Ok(see_other("/login"));
    }
    let fail = |token: String, msg: &str| {
        let mut nav = Nav::anonymous();
        nav.error = Some(msg.to_owned());
        render(&SetupPage { nav, token })
    };
    let Ok(Form(form)) = form else {
        return Ok(fail(String::new(), "The form was incomplete."));
    };
    if !same_origin(&headers) {
        return Ok(fail(form.token, "The form came from another site."));
    }
    let attempt = match password_try(&state, peer).await {
        Ok(attempt) => attempt,
        Err(refusal) => return Ok(fail(form.token, &refusal)),
    };
    if !bool::from(
        form.token
            .trim()
            .as_bytes()
            .ct_eq(state.setup_token.as_bytes()),
    ) {
        tracing::info!(address = %peer.ip(), "wrong setup token");
        return Ok(fail(
            form.token,
            "The setup token is not the one in the server log.",
        ));
    }
    attempt.refund();
    if let Err(msg) = check_new_password(&form.password, &form.confirm) {
        return Ok(fail(form.token, &msg));
    }
    let hash = password::hash(&state, &form.password).await?;
    state.store.put_setting(PASSWORD_KEY, &hash).await?;
    audit(
        &state,
        "portal.setup",
        "administrator password set with the setup token".into(),
    )
    .await;
    start_session(&state, "/").await
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
}

#[derive(Deserialize)]
pub struct LoginForm {
    password: String,
}

/// A try of a portal password (sign-in, setup token, current password) from `peer`: refused
/// with the reason while that address is throttled, else after the slowdown the overall budget
/// asks for (see [`crate::passwords::SignInThrottle`]). Dropping the try counts it as wrong.
async fn password_try(state: &AppState, peer: SocketAddr) -> Result<SignInTry<'_>, String> {
    match state.sign_in.attempt(peer.ip()) {
        Err(retry_in) => {
            tracing::info!(address = %peer.ip(), retry_in, "portal password try throttled");
            Err(format!(
                "Too many wrong passwords from this address: retry in {retry_in} s."
            ))
        }
        Ok(attempt) => {
            if attempt.slow {
                tokio::time::sleep(SLOWDOWN).await;
            }
            Ok(attempt)
        }
    }
}

pub async fn login_form(State(state): State<AppState>) -> PageResult {
    if state.store.get_setting(PASSWORD_KEY).await?.is_none() {
        return Ok(see_other("/setup"));
    }
    Ok(render(&LoginPage {
        nav: Nav::anonymous(),
    }))
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> PageResult {
    let Some(hash) = state.store.get_setting(PASSWORD_KEY).await? else {
        return Ok(see_other("/setup"));
    };
    let fail = |msg: &str| {
        let mut nav = Nav::anonymous();
        nav.error = Some(msg.to_owned());
        render(&LoginPage { nav })
    };
    let Ok(Form(form)) = form else {
        return Ok(fail("Enter the password."));
    };
    if !same_origin(&headers) {
        return Ok(fail("The form came from another site."));
    }
    let attempt = match password_try(&state, peer).await {
        Ok(attempt) => attempt,
        Err(refusal) => return Ok(fail(&refusal)),
    };
    if !password::verify(&state, &form.password, &hash).await? {
        tracing::info!(address = %peer.ip(), "wrong portal password");
        audit(
            &state,
            "portal.login_failed",
            format!("wrong password from {}", peer.ip()),
        )
        .await;
        return Ok(fail("Wrong password."));
    }
    attempt.refund();
    start_session(&state, "/").await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    if let (Some(s), Ok(Form(f))) = (session(&state, &headers).await?, form)
        && check_csrf(&s, &headers, &f.csrf)
    {
        state.store.delete_session(&s.token_hash).await?;
    }
    let mut resp = see_other("/login");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tally_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    password: String,
    confirm: String,
}

pub async fn account_form(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    Ok(render(&AccountPage {
        nav: Nav {
            signed_in: true,
            page: "account",
            csrf: s.csrf,
            notice: None,
            error: None,
        },
    }))
}

pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> PageResult {
    let s = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let mut nav = Nav {
        signed_in: true,
        page: "account",
        csrf: s.csrf.clone(),
        notice: None,
        error: None,
    };
    let Ok(Form(form)) = form else {
        nav.error = Some("The form was incomplete.".into());
        return Ok(render(&AccountPage { nav }));
    };
    if !check_csrf(&s, &headers, &form.csrf) {
        nav.error = Some("The form expired: try again.".into());
        return Ok(render(&AccountPage { nav }));
    }
    let stored = state
        .store
        .get_setting(PASSWORD_KEY)
        .await?
        .unwrap_or_default();
    let attempt = match password_try(&state, peer).await {
        Ok(attempt) => attempt,
        Err(refusal) => {
            nav.error = Some(refusal);
            return Ok(render(&AccountPage { nav }));
        }
    };
    if !password::verify(&state, &form.current, &stored).await? {
        tracing::info!(address = %peer.ip(), "wrong current password on the account page");
        nav.error = Some("The current password is wrong.".into());
        return Ok(render(&AccountPage { nav }));
    }
    attempt.refund();
    if let Err(msg) = check_new_password(&form.password, &form.confirm) {
        nav.error = Some(msg);
        return Ok(render(&AccountPage { nav }));
    }
    state
        .store
        .put_setting(PASSWORD_KEY, &password::hash(&state, &form.password).await?)
        .await?;
    state.store.delete_all_sessions().await?;
    audit(
        &state,
        "portal.password_changed",
        "every session signed out".into(),
    )
    .await;
    start_session(&state, "/?notice=password").await
}
