//! The router and the serving loop: every route, and the layers around them.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use crate::api;
use crate::api::body::MAX_BODY_BYTES;
use crate::service::origins::OriginPolicy;
use crate::state::AppState;

/// The complete HTTP interface.
pub fn router(state: AppState) -> Router {
    let client_api = Router::new()
        .route(tally_proto::wire::PATH_HELLO, get(api::client::hello))
        .route(
            tally_proto::wire::PATH_AUTHORIZE,
            post(api::client::authorize),
        )
        .route(
            tally_proto::wire::PATH_SESSION_REPORT,
            post(api::client::session_report),
        )
        .layer(api::client::cors(OriginPolicy::new(state.store.clone())));
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(client_api)
        .nest("/api/admin", api::admin::router(state.clone()));
    let router = tally_proto::wire::RETIRED_PATHS
        .iter()
        .fold(router, |r, path| r.route(path, any(api::client::retired)));
    router
        .merge(crate::portal::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            report_internal_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::tls::hsts::strict_transport_security,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves plain HTTP until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(Listeners::plain(listener), state, shutdown).await
}

/// Where the server listens: one main listener (HTTPS when `tls` is given) and, beside HTTPS, a
/// plain HTTP one (`http_listen`) that redirects or serves as `http_redirect` says.
pub struct Listeners {
    pub main: tokio::net::TcpListener,
    pub tls: Option<crate::tls::ServerTls>,
    pub plain: Option<tokio::net::TcpListener>,
}

impl Listeners {
    pub fn plain(main: tokio::net::TcpListener) -> Self {
        Self {
            main,
            tls: None,
            plain: None,
        }
    }
}

/// Serves on `listeners` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_on(
    listeners: Listeners,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::portal::announce_setup(&state).await;
    crate::alerts::spawn(&state);
    // Reads the licenses once, so that one activated in an older format is reported at start.
    if let Err(e) = state.server_certificate().await {
        tracing::error!(error = %e, "cannot read the imported licenses");
    }
    crate::secrets::seal_clear_settings(&state).await;
    // One shutdown for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let when_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The peer address reaches handlers (session-password throttling per source address);
    // headers must arrive within the header timeout.
    let header_timeout = std::time::Duration::from_secs(state.settings.header_timeout_seconds);
    let app = router(state.clone());
    let plain = match (listeners.plain, &listeners.tls) {
        (Some(listener), Some(tls)) => {
            tls.certificates.spawn_watcher();
            let plain_app = if state.settings.http_redirect {
                let https_port = listeners.main.local_addr()?.port();
                crate::tls::redirect::router(https_port)
            } else {
                app.clone()
            };
            Some(tokio::spawn(crate::serving::run(
                listener,
                None,
                plain_app,
                header_timeout,
                when_stopped(stopped.clone()),
            )))
        }
        (None, Some(tls)) => {
            tls.certificates.spawn_watcher();
            None
        }
        (_, None) => None,
    };
    if let Some(tls) = &listeners.tls {
        state.serve_certificates(tls.certificates.clone());
    }
    let acceptor = listeners.tls.map(|tls| tls.acceptor);
    let result = crate::serving::run(
        listeners.main,
        acceptor,
        app,
        header_timeout,
        when_stopped(stopped),
    )
    .await;
    if let Some(plain) = plain {
        match plain.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the plain HTTP listener failed"),
            Err(e) => tracing::error!(error = %e, "the plain HTTP listener stopped"),
            Ok(Ok(())) => {}
        }
    }
    // What was gathered in memory is written before the process ends.
    if let Err(e) = state.outcomes.flush(&*state.store).await {
        tracing::error!(error = %e, "cannot write authorization outcomes");
    }
    result
}

/// Every answer with status 500 is an internal error the admin hears about.
async fn report_internal_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Kept as they are (cheap clones) and only formatted for the rare failure.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        let what = format!("{method} {}", uri.path());
        let detail = resp
            .extensions()
            .get::<crate::error::InternalDetail>()
            .map(|d| d.0.clone())
            .unwrap_or_else(|| "see the server log".into());
        state.internal_error(format!("{what} failed: {detail}"));
    }
    resp
}
