//! Baseline servers measured in the same run as Tally: a bare JSON echo (the HTTP floor), a
//! durable echo that answers only once the body is on stable storage (the floor of any durable
//! acknowledgement, see `durable_log.rs`) and a crypto-only endpoint doing exactly the
//! cryptographic work of an authorization (HPKE open, Ed25519 signature of a grant,
//! report-session ticket, sealed reply of the same length) with no store and no rules.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use tally_crypto::envelope::open_request;
use tally_crypto::{EncryptionKeyPair, SigningKey};
use tally_proto::wire::{Envelope, Grant, GrantedItem};

use super::durable_log::DurableLog;

/// Keys of the crypto-only baseline, and the certificate its replies carry (Tally's replies
/// carry the activated license, so the sealed reply is as long).
pub struct CryptoKeys {
    pub encryption: EncryptionKeyPair,
    pub signing: SigningKey,
    pub certificate: String,
}

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn durable_echo(State(log): State<DurableLog>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    match log.append(&body).await {
        Ok(()) => body.into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn crypto(State(keys): State<Arc<CryptoKeys>>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad envelope").into_response();
    };
    let Ok(opened) = open_request(&keys.encryption, "authorize", &envelope) else {
        return (axum::http::StatusCode::BAD_REQUEST, "cannot open").into_response();
    };
    let grant = Grant {
        grant_id: "baseline".into(),
        server_uuid: "baseline".into(),
        device_uuid: "baseline".into(),
        organization: "baseline".into(),
        handshake_code: "baseline".into(),
        items: vec![GrantedItem {
            license_id: "L".into(),
            item_id: "I".into(),
            product: "p".into(),
            modules: vec![],
            license_type: tally_proto::license::LicenseType::PerDevice,
            end: 0,
            grace_end: 0,
        }],
        issued_at: 0,
        valid_until: 0,
        renew_at: 0,
        seat_until: None,
    };
    // The same operations as an authorization: grant signature, report-session ticket, reply
    // sealed with the exported key.
    let tickets = tally_crypto::session::TicketKey::for_server(&keys.signing);
    let ticket = tickets.issue(
        &opened.reply_key.session_key(),
        &tally_crypto::session::TicketContents {
            device_uuid: "baseline".into(),
            handshake_code: "baseline".into(),
            expires_at: 0,
        },
    );
    let reply = tally_crypto::grant::sign_grant(&grant, &keys.signing)
        .ok()
        .zip(ticket.ok())
        .and_then(|(grant, ticket)| {
            serde_json::to_vec(&tally_proto::wire::Reply::Ok(
                tally_proto::wire::AuthorizeResponse {
                    grant,
                    certificates: vec![keys.certificate.clone()],
                    server_time: 0,
                    session: Some(tally_proto::wire::SessionGrant {
                        ticket,
                        expires_at: 0,
                    }),
                },
            ))
            .ok()
        })
        .and_then(|plain| opened.reply_key.seal(&plain).ok());
    match reply {
        Some(sealed) => axum::Json(sealed).into_response(),
        None => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "seal failed").into_response(),
    }
}

/// Serves the baselines (`/echo`, `/durable-echo`, `/crypto`) on `listener` until the process
/// ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    keys: Arc<CryptoKeys>,
    log: DurableLog,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/echo", post(echo))
        .route("/durable-echo", post(durable_echo).with_state(log))
        .route("/crypto", post(crypto))
        .with_state(keys);
    axum::serve(listener, app).await
}
