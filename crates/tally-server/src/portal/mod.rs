//! The management portal: server-rendered HTML (askama templates compiled into the binary, one
//! stylesheet, no JavaScript), guarded by a password set with a one-time setup token, a session
//! cookie and a CSRF token on every form.

mod alerting;
pub(crate) mod auth;
mod chart;
mod pages;
mod stats;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

pub use auth::announce_setup;

/// What the layout needs on every page.
pub struct Nav {
    pub signed_in: bool,
    pub page: &'static str,
    pub csrf: String,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Nav {
    pub fn anonymous() -> Self {
        Self {
            signed_in: false,
            page: "",
            csrf: String::new(),
            notice: None,
            error: None,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/setup", get(auth::setup_form).post(auth::setup))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route(
            "/account",
            get(auth::account_form).post(auth::change_password),
        )
        .route("/labels", get(pages::labels))
        .route("/activation-request.json", get(pages::activation_request))
        .route(
            "/licenses",
            get(pages::licenses)
                .post(pages::import)
                .layer(axum::extract::DefaultBodyLimit::max(
                    pages::MAX_IMPORT_REQUEST_BYTES,
                )),
        )
        .route(
            "/handshakes",
            get(pages::handshakes).post(pages::create_handshake),
        )
        .route(
            "/handshakes/{code}",
            get(pages::handshake).post(pages::update_handshake),
        )
        .route("/devices", get(pages::devices))
        .route("/devices/unregister", post(pages::unregister))
        .route("/statistics", get(stats::page))
        .route("/statistics.csv", get(stats::csv))
        .route("/audit", get(pages::audit))
        .route("/alerts", get(alerting::history))
        .route("/email", get(alerting::page).post(alerting::save))
        .route("/webhooks", post(alerting::save_webhooks))
        .route("/static/tally.css", get(stylesheet))
        .layer(axum::middleware::map_response(security_headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/tally.css"),
    )
        .into_response()
}

/// Pages may not be framed, sniffed or load anything from elsewhere; nor kept by the browser or
/// a proxy (after sign-out, Back must not show devices), except what sets its own caching (the
/// stylesheet).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// Renders a template, or a plain error page if rendering fails.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a portal page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

/// Redirect after a successful form (POST, then GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A failure while building a page: logged, shown as a short message.
pub struct PageError(String);

impl<E: std::fmt::Display> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "portal page failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<h1>Something went wrong</h1><p>The administrator log has the details.</p>"),
        )
            .into_response()
    }
}

pub type PageResult = Result<Response, PageError>;

/// `YYYY-MM-DD HH:MM UTC` (see `tally_proto::time_text`).
pub use tally_proto::time_text::minute as when;

/// Splits a textarea into trimmed, non-empty lines.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}
