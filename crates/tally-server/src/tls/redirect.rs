//! The plain HTTP listener beside HTTPS (`http_listen` with `http_redirect`): every request is
//! sent to the same host, path and query on the HTTPS port with `308 Permanent Redirect`, which
//! keeps the method and body (a client posting to `http://` is told where to post again).

use axum::Router;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// Answers every request with a redirect to HTTPS on `https_port`.
pub fn router(https_port: u16) -> Router {
    Router::new().fallback(move |headers: HeaderMap, uri: Uri| async move {
        redirect(https_port, &headers, &uri)
    })
}

fn redirect(https_port: u16, headers: &HeaderMap, uri: &Uri) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match host.and_then(|h| target(https_port, h, uri)) {
        Some(to) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "This server answers over HTTPS: use an https:// address.",
        )
            .into_response(),
    }
}

/// `https://<host of the Host header>[:port]<path and query>`; `None` for a malformed host.
fn target(https_port: u16, host_header: &str, uri: &Uri) -> Option<String> {
    let authority: Authority = host_header.parse().ok()?;
    let host = authority.host();
    if host.is_empty() || authority.as_str().contains('@') {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_host_path_and_query_and_names_the_https_port() {
        let uri: Uri = "/statistics?feature=scan".parse().unwrap();
        assert_eq!(
            target(48443, "licenses.example.com:8080", &uri).as_deref(),
            Some("https://licenses.example.com:48443/statistics?feature=scan")
        );
        assert_eq!(
            target(443, "licenses.example.com", &uri).as_deref(),
            Some("https://licenses.example.com/statistics?feature=scan")
        );
        assert_eq!(
            target(443, "[::1]:80", &"/".parse().unwrap()).as_deref(),
            Some("https://[::1]/")
        );
    }

    #[test]
    fn a_malformed_host_gets_no_redirect() {
        let uri: Uri = "/".parse().unwrap();
        for bad in ["", "evil.example/path", "user@evil.example", "a b"] {
            assert_eq!(target(443, bad, &uri), None, "{bad}");
        }
    }
}
