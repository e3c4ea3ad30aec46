//! The accept loop: each connection is served by hyper's HTTP/1 connection with a header read
//! timeout (`axum::serve` has no timer, so a client that sends half a request would hold its
//! connection for ever), and the peer address reaches handlers as [`ConnectInfo`], the
//! connection's [`Scheme`] as an extension.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// How a request reached this listener: over TLS or in plain HTTP (before any proxy header is
/// considered). Every request carries it as an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A failed `accept` (too many open files, …) is retried after this pause rather than spinning.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` until `shutdown` completes, then waits for the requests in
/// flight. With `tls`, each connection first completes a TLS handshake (within `header_timeout`)
/// and its requests carry [`Scheme::Https`]. A client that has not sent a request's headers
/// within `header_timeout` is disconnected.
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers go out at once rather than waiting for more to send.
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let connection = serve_connection(
                        TokioIo::new(stream),
                        peer,
                        Scheme::Http,
                        app,
                        header_timeout,
                    );
                    watcher.watch(connection).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = serve_connection(
                        TokioIo::new(stream),
                        peer,
                        Scheme::Https,
                        app,
                        header_timeout,
                    );
                    watcher.watch(connection).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One HTTP/1 connection over `io` from `peer`, answered by `app`.
pub fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    scheme: Scheme,
    app: Router,
    header_timeout: Duration,
) -> impl GracefulConnection<Error = hyper::Error> + Send + use<I>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(scheme);
        req.map(axum::body::Body::new)
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, TowerToHyperService::new(service))
}
