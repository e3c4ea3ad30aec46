//! `Strict-Transport-Security` on every answer given over HTTPS, so that a browser that reached
//! the server once over HTTPS never falls back to plain HTTP (`hsts_max_age_seconds`, 0 for
//! none). Not sent in plain HTTP, where it means nothing and a proxy may add its own.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::serving::Scheme;
use crate::state::AppState;

pub async fn strict_transport_security(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let https = req.extensions().get::<Scheme>() == Some(&Scheme::Https);
    let mut resp = next.run(req).await;
    let max_age = state.settings.hsts_max_age_seconds;
    if https
        && max_age > 0
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}"))
    {
        resp.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    resp
}
