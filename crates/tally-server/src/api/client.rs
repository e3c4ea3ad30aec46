//! The SDK protocol: a public hello, an HPKE-sealed authorization that opens a report session,
//! and usage reports in that session. Paths of the previous protocol answer `protocol_outdated`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tally_crypto::envelope::ENVELOPE_VERSION;
use tower_http::cors::{AllowOrigin, CorsLayer};

use tally_crypto::session::{Direction, SessionKey, TicketContents, TicketKey};
use tally_proto::ErrorCode;
use tally_proto::wire::{
    AuthorizeRequest, Envelope, MAX_REQUEST_SKEW_SECONDS, PROTOCOL_VERSION, Reply, ReportRequest,
    RequestStamp, SealedResponse, ServerHello, SessionEnvelope,
};

use crate::error::{ApiError, ApiResult};
use crate::service::authorize::Caller;
use crate::service::origins::OriginPolicy;
use crate::state::AppState;
use crate::{api, service};

/// `GET /api/v2/hello`: the server's public identity and the vendor's certificate of it, which
/// names a license id but no organization, item or quantity.
pub async fn hello(State(state): State<AppState>) -> Result<axum::Json<ServerHello>, ApiError> {
    let public = state.identity.public();
    Ok(axum::Json(ServerHello {
        protocol: PROTOCOL_VERSION,
        uuid: public.uuid,
        signing_key: public.signing_key,
        encryption_key: public.encryption_key,
        server_time: state.now(),
        certificate: state.server_certificate().await?,
    }))
}

/// The CORS layer of the client API: a browser page may call it when some handshake code names
/// the page's domain (`service::origins`). Requests without an `Origin` (native SDKs) are
/// answered as they would be without it.
pub fn cors(policy: OriginPolicy) -> CorsLayer {
    let policy = Arc::new(policy);
    let allowed = move |origin: HeaderValue, _: &Parts| {
        let policy = policy.clone();
        async move {
            match origin.to_str() {
                Ok(origin) => policy.allows(origin).await,
                Err(_) => false,
            }
        }
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(allowed))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        // A preflight answer kept for a while is no loophole: a response without the header is
        // unreadable anyway, and the request's own code is checked after it is opened.
        .max_age(Duration::from_secs(600))
}

/// Any path of protocol 1: a plain error an SDK of that version shows its host application.
pub async fn retired() -> ApiError {
    ApiError::new(
        ErrorCode::ProtocolOutdated,
        format!(
            "this server speaks protocol {PROTOCOL_VERSION} (paths /api/v{PROTOCOL_VERSION}/…) and no longer protocol 1: update the Tally SDK of this product"
        ),
    )
}

/// `POST /api/v2/authorize`, the one HPKE-sealed request. Errors found before the envelope is
/// opened are answered in plain JSON (there is no key to seal them with); every later answer,
/// success or error, is sealed to the requesting client.
///
/// A browser names the page the request comes from (`Origin`); the service checks it against
/// the request's handshake code once the envelope is open.
pub async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let opened = match open(&state, "authorize", body) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let outcome =
        match api::body::json::<AuthorizeRequest>(&opened.plaintext, ErrorCode::BadRequest) {
            Ok(req) => match check_stamp(&state, &req.stamp, opened.replay_id).await {
                Ok(()) => {
                    let session = opened.reply_key.session_key();
                    let caller = Caller {
                        address: peer.ip(),
                        origin: headers
                            .get(header::ORIGIN)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    };
                    service::authorize::authorize(&state, req, session, caller).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
    sealed_answer(outcome, |plain| opened.reply_key.seal(plain))
}

/// `POST /api/v2/session/report`: usage reports encrypted with the key of a report session (see
/// `tally_crypto::session`). No public-key operation: the ticket carries the session key, sealed
/// to this server, and names the device and handshake code the reports are for.
pub async fn session_report(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let opened = match open_session(&state, body).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let outcome = match api::body::json::<ReportRequest>(&opened.plaintext, ErrorCode::BadRequest) {
        Ok(req) => match check_skew(&state, req.sent_at) {
            Ok(()) => service::report::report(&state, &opened.session.1, req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    sealed_answer(outcome, |plain| {
        opened
            .session
            .0
            .seal(Direction::ToClient, opened.seq, &opened.ticket_text, plain)
            .map(|ct| SealedResponse { ct })
    })
}

/// An opened session message.
struct OpenedSession {
    session: Arc<(SessionKey, TicketContents)>,
    ticket_text: String,
    seq: u64,
    plaintext: Vec<u8>,
}

/// Opens a session envelope: a ticket this server issued and has not expired, a message that
/// decrypts under its key, and a sequence number not seen before. A ticket is decrypted once per
/// session; later messages find its key by the ticket id. Every refusal here is plain JSON: a
/// reply sealed with the message's number could repeat a nonce.
async fn open_session(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<OpenedSession> {
    let bytes = api::body::bytes(body)?;
    let envelope: SessionEnvelope = api::body::json(&bytes, ErrorCode::BadRequest)?;
    if envelope.v != ENVELOPE_VERSION {
        return Err(ApiError::new(
            ErrorCode::BadEnvelope,
            format!(
                "unsupported envelope version {} (this server speaks {ENVELOPE_VERSION})",
                envelope.v
            ),
        ));
    }
    let now = state.now();
    let unknown = || {
        ApiError::new(
            ErrorCode::SessionExpired,
            "this server did not issue the ticket",
        )
    };
    let id = TicketKey::ticket_id(&envelope.ticket).map_err(|_| unknown())?;
    let session = match state.sessions.opened(&id) {
        Some(known) => known,
        None => {
            let ticket = state
                .tickets
                .open(&envelope.ticket)
                .map_err(|_| unknown())?;
            Arc::new((ticket.key, ticket.contents))
        }
    };
    if session.1.expires_at <= now {
        return Err(ApiError::plain(ErrorCode::SessionExpired).with_server_time(now));
    }
    let plaintext = session
        .0
        .open(
            Direction::ToServer,
            envelope.seq,
            &envelope.ticket,
            &envelope.ct,
        )
        .map_err(|e| ApiError::new(ErrorCode::BadEnvelope, e.to_string()))?;
    if !state
        .accept_session_message(id, envelope.seq, &session)
        .await?
    {
        return Err(ApiError::plain(ErrorCode::ReplayedRequest));
    }
    Ok(OpenedSession {
        session,
        ticket_text: envelope.ticket,
        seq: envelope.seq,
        plaintext,
    })
}

/// The answer to an opened request, success or error, as a `Reply` sealed by `seal`; the status
/// mirrors the error inside.
fn sealed_answer<Resp: Serialize>(
    outcome: ApiResult<Resp>,
    seal: impl FnOnce(&[u8]) -> tally_crypto::CryptoResult<SealedResponse>,
) -> Response {
    let mut internal = None;
    let (status, reply) = match outcome {
        Ok(resp) => (StatusCode::OK, Reply::Ok(resp)),
        Err(e) => {
            tracing::debug!(error = %e, "request refused");
            // The cause of a 500 is logged here and handed to the error notifier.
            internal = e.internal_detail();
            (e.status(), Reply::Err(e.body()))
        }
    };
    let sealed = serde_json::to_vec(&reply)
        .map_err(|e| e.to_string())
        .and_then(|plain| seal(&plain).map_err(|e| e.to_string()));
    match sealed {
        Ok(s) => {
            let mut resp = (status, axum::Json(s)).into_response();
            if let Some(detail) = internal {
                resp.extensions_mut().insert(detail);
            }
            resp
        }
        Err(e) => ApiError::internal(format!("cannot seal the reply: {e}")).into_response(),
    }
}

fn open(
    state: &AppState,
    purpose: &str,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<tally_crypto::envelope::OpenedRequest> {
    let bytes = api::body::bytes(body)?;
    let envelope: Envelope = api::body::json(&bytes, ErrorCode::BadRequest)?;
    tally_crypto::envelope::open_request(&state.identity.encryption, purpose, &envelope)
        .map_err(|e| ApiError::new(ErrorCode::BadEnvelope, e.to_string()))
}

/// Refuses stamps too far from the server clock, and envelopes already seen.
async fn check_stamp(state: &AppState, stamp: &RequestStamp, replay_id: [u8; 32]) -> ApiResult<()> {
    check_skew(state, stamp.sent_at)?;
    let now = state.now();
    let forget_after = replay_forget_after(stamp.sent_at, now);
    if !state.first_use_of_envelope(replay_id, forget_after).await? {
        return Err(ApiError::plain(ErrorCode::ReplayedRequest));
    }
    Ok(())
}

/// Refuses requests sent (by the client's estimate of the server clock) too far from now.
fn check_skew(state: &AppState, sent_at: tally_proto::UnixSeconds) -> ApiResult<()> {
    let now = state.now();
    if outside_skew(sent_at, now) {
        return Err(ApiError::new(
            ErrorCode::StaleRequest,
            format!(
                "the request was sent at {sent_at} but the server time is {now}; correct the offset and retry"
            ),
        )
        .with_server_time(now));
    }
    Ok(())
}

/// Whether a client's `sent_at` lies more than [`MAX_REQUEST_SKEW_SECONDS`] from `now`. Any
/// number a client sends (up to `i64::MIN` and `i64::MAX`) is judged without overflow.
fn outside_skew(sent_at: tally_proto::UnixSeconds, now: tally_proto::UnixSeconds) -> bool {
    sent_at.saturating_sub(now).saturating_abs() > MAX_REQUEST_SKEW_SECONDS
}

/// When the replay cache may forget an envelope stamped `sent_at`: once the stamp itself would be
/// refused as stale, and never before the next second.
fn replay_forget_after(
    sent_at: tally_proto::UnixSeconds,
    now: tally_proto::UnixSeconds,
) -> tally_proto::UnixSeconds {
    sent_at
        .saturating_add(MAX_REQUEST_SKEW_SECONDS + 1)
        .max(now.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_window_takes_any_client_number_without_overflow() {
        let now = 1_800_000_000;
        assert!(!outside_skew(now, now));
        assert!(!outside_skew(now - MAX_REQUEST_SKEW_SECONDS, now));
        assert!(!outside_skew(now + MAX_REQUEST_SKEW_SECONDS, now));
        assert!(outside_skew(now - MAX_REQUEST_SKEW_SECONDS - 1, now));
        assert!(outside_skew(now + MAX_REQUEST_SKEW_SECONDS + 1, now));
        for sent_at in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            assert!(outside_skew(sent_at, now), "{sent_at}");
            assert!(replay_forget_after(sent_at, now) > now, "{sent_at}");
        }
        assert_eq!(
            replay_forget_after(now, now),
            now + MAX_REQUEST_SKEW_SECONDS + 1
        );
        assert_eq!(replay_forget_after(i64::MAX, now), i64::MAX);
    }
}
