//! The protocol test vectors every SDK checks (`docs/sdk/test-vectors.json`, described in
//! `docs/sdk/test-vectors.md`): the committed file passes the checker, a file made now passes it
//! too, and a vector changed anywhere fails naming its case. `TALLY_REGENERATE_TEST_VECTORS=1`
//! writes a new file (new random keys and nonces) before checking it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tally_crypto::envelope::{
    ENVELOPE_VERSION, REPLY_KEY_LABEL, SESSION_KEY_LABEL, hpke_info, open_request, seal_request,
};
use tally_crypto::session::{
    Direction, SessionKey, TICKET_NONCE, TicketContents, TicketKey, message_aad,
};
use tally_crypto::{SigningKey, b64_decode, b64_encode};
use tally_proto::license::{LicenseItem, LicenseType, ServerPublicIdentity};
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, Grant, GrantedItem, PROTOCOL_VERSION, Reply,
    ReportRequest, ReportResponse, RequestStamp, SESSION_SECONDS, SealedResponse, ServerHello,
    SessionEnvelope, SessionGrant, SignedGrant, UsageReport, ValidationField,
};
use tally_proto::{ErrorCode, UnixSeconds};
use tally_sdk::conformance::check_test_vectors;

use crate::fixtures::{DAY, END, ServerKeys, T0, certificate, item, server_certificate};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/sdk/test-vectors.json"
);

/// Cases in a file made by [`generate`]: the format, constants and keys, 2 + 3 + 2 for the
/// authorization, 14 chains, 3 + 6 for the report session.
const CASES: usize = 33;

#[test]
fn the_committed_test_vectors_check() {
    if std::env::var("TALLY_REGENERATE_TEST_VECTORS").is_ok_and(|v| v == "1") {
        // Replaced in one step: the other tests here read the file meanwhile.
        let fresh = format!("{FILE}.new");
        std::fs::write(&fresh, generate()).unwrap();
        std::fs::rename(&fresh, FILE).unwrap();
    }
    let text = std::fs::read_to_string(FILE).unwrap();
    let checked = check_test_vectors(&text).unwrap_or_else(|e| {
        panic!("{e}\n(after a deliberate protocol change: TALLY_REGENERATE_TEST_VECTORS=1)")
    });
    assert_eq!(checked, CASES);
}

#[test]
fn vectors_made_now_check() {
    assert_eq!(check_test_vectors(&generate()).unwrap(), CASES);
}

/// The committed vectors with `change` applied must fail, naming `case`.
fn fails_naming(case: &str, change: impl FnOnce(&mut Value)) {
    let mut vectors: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    change(&mut vectors);
    let e = check_test_vectors(&vectors.to_string()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message.starts_with(&format!("test vector `{case}`:")),
        "{e}"
    );
}

fn chain_case<'a>(vectors: &'a mut Value, name: &str) -> &'a mut Value {
    vectors["grant_chain"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["case"] == name)
        .unwrap()
}

#[test]
fn a_changed_vector_fails_naming_its_case() {
    fails_naming("constants", |v| {
        v["constants"]["hpke_info_authorize"] = json!("tally/v3 authorize");
    });
    fails_naming("keys", |v| {
        let other = SigningKey::generate().unwrap().verifying_key().to_base64();
        v["keys"]["vendor_public_key"] = json!(other);
    });
    fails_naming("authorize.request", |v| {
        let text = v["authorize"]["request_json"].as_str().unwrap();
        let changed = text.replace("scanner", "scanned");
        v["authorize"]["request_json"] = json!(changed);
    });
    fails_naming("authorize.request", |v| {
        v["authorize"]["session_key"] = v["authorize"]["reply_key"].clone();
    });
    fails_naming("authorize.reply", |v| {
        let altered = flip(v["authorize"]["sealed_reply"]["ct"].as_str().unwrap());
        v["authorize"]["sealed_reply"]["ct"] = json!(altered);
    });
    // A refusal that would be accepted, and a grant whose expected fields differ.
    fails_naming("authorize.request_for_another_endpoint", |v| {
        v["authorize"]["request_must_fail"][0]["open_as"] = json!("authorize");
    });
    fails_naming("grant_chain.grant_altered", |v| {
        let valid = chain_case(v, "grant_chain.valid")["grant"].clone();
        chain_case(v, "grant_chain.grant_altered")["grant"] = valid;
    });
    fails_naming("grant_chain.valid", |v| {
        chain_case(v, "grant_chain.valid")["expected_grant"]["valid_until"] = json!(T0);
    });
    fails_naming("grant_chain.expired", |v| {
        chain_case(v, "grant_chain.expired")["expected_error"] =
            json!({"code": 1008, "name": "seat_lapsed"});
    });
    fails_naming("report_session.request", |v| {
        v["report_session"]["request"]["seq"] = json!(2);
    });
    fails_naming("report_session.reply", |v| {
        v["report_session"]["reply"]["aad_hex"] = json!("00");
    });
}

/// `text` (base64) with one bit of its last byte changed.
fn flip(text: &str) -> String {
    let mut bytes = b64_decode(text).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    b64_encode(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The layout of the file, in the order a reader meets it (`conformance.rs` reads it).
#[derive(Serialize)]
struct File {
    format: &'static str,
    protocol: u8,
    about: &'static str,
    constants: Constants,
    keys: Keys,
    authorize: Authorize,
    grant_chain: Vec<ChainCase>,
    report_session: Session,
}

#[derive(Serialize)]
struct Constants {
    hpke_mode: &'static str,
    hpke_kem_id: u16,
    hpke_kdf_id: u16,
    hpke_aead_id: u16,
    hpke_info_authorize: String,
    hpke_aad_hex: &'static str,
    hpke_export_reply_key_label: String,
    hpke_export_session_key_label: String,
    hpke_export_length: usize,
    reply_aead: &'static str,
    reply_nonce_hex: String,
    document_signing_context: String,
    grant_signing_context: String,
    session_aead: &'static str,
    session_nonce_length: usize,
    session_direction_to_server: u8,
    session_direction_to_client: u8,
}

#[derive(Serialize)]
struct Keys {
    vendor_secret_key: String,
    vendor_public_key: String,
    server_uuid: String,
    server_signing_secret_key: String,
    server_signing_public_key: String,
    server_encryption_secret_key: String,
    server_encryption_public_key: String,
}

#[derive(Serialize)]
struct Authorize {
    purpose: &'static str,
    request_json: String,
    envelope: Envelope,
    reply_key: String,
    session_key: String,
    reply_json: String,
    sealed_reply: SealedResponse,
    request_must_fail: Vec<RequestFailure>,
    reply_must_fail: Vec<ReplyFailure>,
}

#[derive(Serialize)]
struct RequestFailure {
    case: &'static str,
    open_as: &'static str,
    envelope: Envelope,
    expected_error: Expected,
}

#[derive(Serialize)]
struct ReplyFailure {
    case: &'static str,
    sealed_reply: SealedResponse,
    expected_error: Expected,
}

#[derive(Serialize, Clone, Copy)]
struct Expected {
    code: u16,
    name: &'static str,
}

fn expected(code: ErrorCode) -> Expected {
    Expected {
        code: code.code(),
        name: code.name(),
    }
}

#[derive(Serialize)]
struct ChainCase {
    case: String,
    device_uuid: String,
    at: UnixSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_grant: Option<Grant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_error: Option<Expected>,
    hello: ServerHello,
    grant: SignedGrant,
    certificates: Vec<String>,
}

#[derive(Serialize)]
struct Session {
    ticket: String,
    session_key: String,
    ticket_contents: TicketContents,
    request: Message,
    request_envelope: SessionEnvelope,
    reply: Message,
    must_fail: Vec<MessageFailure>,
}

#[derive(Serialize)]
struct Message {
    direction: &'static str,
    seq: u64,
    aad_hex: String,
    plaintext_json: String,
    ct: String,
}

#[derive(Serialize)]
struct MessageFailure {
    case: String,
    direction: &'static str,
    seq: u64,
    ticket: String,
    ct: String,
    expected_error: Expected,
}

/// A grant of `item` (of license `L-1`) issued at `T0` to `device` by `server`.
fn grant_of(server: &ServerPublicIdentity, device: &str, item: &LicenseItem) -> Grant {
    Grant {
        grant_id: tally_crypto::random_id().unwrap(),
        server_uuid: server.uuid.clone(),
        device_uuid: device.into(),
        organization: "acme".into(),
        handshake_code: "acme-default".into(),
        items: vec![GrantedItem {
            license_id: "L-1".into(),
            item_id: item.id.clone(),
            product: item.product.clone(),
            modules: vec!["qr".into()],
            license_type: item.license_type,
            end: item.end,
            grace_end: item.grace_end(),
        }],
        issued_at: T0,
        valid_until: T0 + 7 * DAY,
        renew_at: T0 + DAY,
        seat_until: None,
    }
}

/// A chain of trust, judged at some time to a grant or a refusal.
#[derive(Clone, Copy)]
struct Chain<'a> {
    hello: &'a ServerHello,
    certificates: &'a [String],
    grant: &'a SignedGrant,
    device: &'a str,
}

impl Chain<'_> {
    fn case(self, name: &str, at: UnixSeconds, outcome: Result<&Grant, ErrorCode>) -> ChainCase {
        ChainCase {
            case: format!("grant_chain.{name}"),
            device_uuid: self.device.to_owned(),
            at,
            expected_grant: outcome.ok().cloned(),
            expected_error: outcome.err().map(expected),
            hello: self.hello.clone(),
            grant: self.grant.clone(),
            certificates: self.certificates.to_vec(),
        }
    }
}

/// A new vector file: fresh keys, one authorization of a device and its report session, chains
/// of trust that verify and that must be refused.
fn generate() -> String {
    let vendor = SigningKey::generate().unwrap();
    let server = ServerKeys::generate(&uuid::Uuid::new_v4().to_string());
    let device = uuid::Uuid::new_v4().to_string();
    let per_device = LicenseItem {
        modules: vec!["qr".into()],
        ..item("L-1-1", END)
    };
    let concurrent = LicenseItem {
        license_type: LicenseType::ConcurrentDevice,
        ..item("L-1-2", END)
    };
    let activated = certificate(
        &vendor,
        &server.identity,
        "L-1",
        vec![per_device.clone(), concurrent.clone()],
    );
    let hello = ServerHello {
        protocol: PROTOCOL_VERSION,
        uuid: server.identity.uuid.clone(),
        signing_key: server.identity.signing_key.clone(),
        encryption_key: server.identity.encryption_key.clone(),
        server_time: T0,
        certificate: Some(server_certificate(&activated, &server.identity)),
    };

    // The authorization: request, the keys exported from its HPKE context, the sealed reply.
    let request = AuthorizeRequest {
        stamp: RequestStamp {
            request_id: tally_crypto::random_id().unwrap(),
            sent_at: T0,
        },
        organization: "acme".into(),
        handshake_code: String::new(),
        session_password: None,
        device_uuid: device.clone(),
        product: "scanner".into(),
        version: Some(2),
        modules: vec!["qr".into()],
        validation: ValidationField::default(),
        friendly_name: Some("front desk scanner".into()),
        buffer_days: None,
        instances: None,
    };
    let request_json = serde_json::to_string(&request).unwrap();
    let seal = |key: &ServerKeys, plaintext: &[u8]| {
        seal_request(&key.encryption.public(), "authorize", plaintext)
            .unwrap()
            .0
    };
    let envelope = seal(&server, request_json.as_bytes());
    let opened = open_request(&server.encryption, "authorize", &envelope).unwrap();
    let session_key = opened.reply_key.session_key();
    let grant = grant_of(&server.identity, &device, &per_device);
    let signed = tally_crypto::grant::sign_grant(&grant, &server.signing).unwrap();
    let ticket_contents = TicketContents {
        device_uuid: device.clone(),
        handshake_code: grant.handshake_code.clone(),
        expires_at: T0 + SESSION_SECONDS,
    };
    let ticket_key = TicketKey::for_server(&server.signing);
    let ticket = ticket_key.issue(&session_key, &ticket_contents).unwrap();
    let response = AuthorizeResponse {
        grant: signed.clone(),
        certificates: vec![activated.clone()],
        server_time: T0,
        session: Some(SessionGrant {
            ticket: ticket.clone(),
            expires_at: ticket_contents.expires_at,
        }),
    };
    let reply_json = serde_json::to_string(&Reply::Ok(response)).unwrap();
    let sealed_reply = opened.reply_key.seal(reply_json.as_bytes()).unwrap();

    let another_server = ServerKeys::generate(&uuid::Uuid::new_v4().to_string());
    let reply_to_another = open_request(&server.encryption, "authorize", &seal(&server, b"{}"))
        .unwrap()
        .reply_key
        .seal(reply_json.as_bytes())
        .unwrap();
    let bad_envelope = expected(ErrorCode::BadEnvelope);
    let no_answer = expected(ErrorCode::ServerUnreachable);
    let authorize = Authorize {
        purpose: "authorize",
        request_json: request_json.clone(),
        envelope: envelope.clone(),
        reply_key: b64_encode(opened.reply_key.reply_key_bytes()),
        session_key: b64_encode(session_key.as_bytes()),
        reply_json,
        sealed_reply: sealed_reply.clone(),
        request_must_fail: vec![
            RequestFailure {
                case: "authorize.request_for_another_endpoint",
                open_as: "report",
                envelope: envelope.clone(),
                expected_error: bad_envelope,
            },
            RequestFailure {
                case: "authorize.request_altered",
                open_as: "authorize",
                envelope: Envelope {
                    ct: flip(&envelope.ct),
                    ..envelope.clone()
                },
                expected_error: bad_envelope,
            },
            RequestFailure {
                case: "authorize.request_for_another_server",
                open_as: "authorize",
                envelope: seal(&another_server, request_json.as_bytes()),
                expected_error: bad_envelope,
            },
        ],
        reply_must_fail: vec![
            ReplyFailure {
                case: "authorize.reply_altered",
                sealed_reply: SealedResponse {
                    ct: flip(&sealed_reply.ct),
                },
                expected_error: no_answer,
            },
            ReplyFailure {
                case: "authorize.reply_to_another_request",
                sealed_reply: reply_to_another,
                expected_error: no_answer,
            },
        ],
    };

    let chain = Chain {
        hello: &hello,
        certificates: std::slice::from_ref(&activated),
        grant: &signed,
        device: &device,
    };
    let file = File {
        format: "tally-test-vectors/1",
        protocol: PROTOCOL_VERSION,
        about: "Protocol test vectors of Tally, checked by every SDK. Layout and how to check each \
                part: docs/sdk/test-vectors.md. Made by `TALLY_REGENERATE_TEST_VECTORS=1 cargo \
                test -p tally-sdk --test it vectors`.",
        constants: Constants {
            hpke_mode: "base",
            hpke_kem_id: 0x0020,
            hpke_kdf_id: 0x0001,
            hpke_aead_id: 0x0003,
            hpke_info_authorize: text(&hpke_info("authorize")),
            hpke_aad_hex: "",
            hpke_export_reply_key_label: text(REPLY_KEY_LABEL),
            hpke_export_session_key_label: text(SESSION_KEY_LABEL),
            hpke_export_length: 32,
            reply_aead: "ChaCha20-Poly1305",
            reply_nonce_hex: "00".repeat(12),
            document_signing_context: text(tally_crypto::document::SIGNING_CONTEXT),
            grant_signing_context: text(tally_crypto::grant::GRANT_CONTEXT),
            session_aead: "XChaCha20-Poly1305",
            session_nonce_length: TICKET_NONCE,
            session_direction_to_server: Direction::ToServer as u8,
            session_direction_to_client: Direction::ToClient as u8,
        },
        keys: Keys {
            vendor_secret_key: vendor.to_base64(),
            vendor_public_key: vendor.verifying_key().to_base64(),
            server_uuid: server.identity.uuid.clone(),
            server_signing_secret_key: server.signing.to_base64(),
            server_signing_public_key: server.identity.signing_key.clone(),
            server_encryption_secret_key: server.encryption.secret_to_base64(),
            server_encryption_public_key: server.identity.encryption_key.clone(),
        },
        authorize,
        grant_chain: chains(&vendor, &server, chain, &grant, &concurrent),
        report_session: session(&ticket_key, &ticket, &ticket_contents, &session_key),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    text
}

/// Chains that verify (a per-device grant and a concurrent seat) and every way one must be
/// refused: altered or foreign signatures, another device, more than the license grants, no or
/// another license, a hello the vendor did not certify, and time run out.
fn chains(
    vendor: &SigningKey,
    server: &ServerKeys,
    valid: Chain<'_>,
    grant: &Grant,
    concurrent: &LicenseItem,
) -> Vec<ChainCase> {
    let sign = |g: &Grant, key: &SigningKey| tally_crypto::grant::sign_grant(g, key).unwrap();
    let seat = Grant {
        seat_until: Some(T0 + 360),
        valid_until: T0 + 420,
        renew_at: T0 + 180,
        ..grant_of(&server.identity, valid.device, concurrent)
    };
    let seat_signed = sign(&seat, &server.signing);
    let seat_chain = Chain {
        grant: &seat_signed,
        ..valid
    };

    let mut payload: Value =
        serde_json::from_slice(&b64_decode(&valid.grant.payload).unwrap()).unwrap();
    payload["valid_until"] = json!(T0 + 30 * DAY);
    let altered = SignedGrant {
        payload: b64_encode(payload.to_string().as_bytes()),
        signature: valid.grant.signature.clone(),
    };
    let rogue_signed = sign(grant, &SigningKey::generate().unwrap());
    let mut beyond = grant.clone();
    beyond.items[0].end += 365 * DAY;
    beyond.items[0].grace_end += 365 * DAY;
    let beyond_signed = sign(&beyond, &server.signing);
    let license_altered =
        [valid.certificates[0].replacen("\"quantity\": 5,", "\"quantity\": 500,", 1)];
    assert_ne!(
        license_altered[0], valid.certificates[0],
        "the license should name 5"
    );
    let another = ServerKeys::generate(&uuid::Uuid::new_v4().to_string());
    let for_another = [certificate(
        vendor,
        &another.identity,
        "L-1",
        vec![concurrent.clone()],
    )];

    let rogue_vendor = SigningKey::generate().unwrap();
    let rogue_activated = certificate(
        &rogue_vendor,
        &server.identity,
        "L-1",
        vec![concurrent.clone()],
    );
    let rogue_hello = ServerHello {
        certificate: Some(server_certificate(&rogue_activated, &server.identity)),
        ..valid.hello.clone()
    };
    let swapped_key = ServerHello {
        encryption_key: another.identity.encryption_key.clone(),
        ..valid.hello.clone()
    };
    let no_certificate = ServerHello {
        certificate: None,
        ..valid.hello.clone()
    };
    let other_device = uuid::Uuid::new_v4().to_string();
    let later = T0 + 3600;

    use ErrorCode::{GrantExpired, GrantInvalid, SeatLapsed, ServerNotTrusted};
    vec![
        valid.case("valid", later, Ok(grant)),
        seat_chain.case("valid_seat", T0 + 60, Ok(&seat)),
        valid.case("expired", grant.valid_until, Err(GrantExpired)),
        seat_chain.case("seat_lapsed", seat.valid_until, Err(SeatLapsed)),
        Chain {
            grant: &altered,
            ..valid
        }
        .case("grant_altered", later, Err(GrantInvalid)),
        Chain {
            grant: &rogue_signed,
            ..valid
        }
        .case("grant_signed_by_another_key", later, Err(GrantInvalid)),
        Chain {
            device: &other_device,
            ..valid
        }
        .case("grant_for_another_device", later, Err(GrantInvalid)),
        Chain {
            grant: &beyond_signed,
            ..valid
        }
        .case("grant_beyond_license", later, Err(GrantInvalid)),
        Chain {
            certificates: &license_altered,
            ..valid
        }
        .case("license_altered", later, Err(GrantInvalid)),
        Chain {
            certificates: &for_another,
            ..valid
        }
        .case("license_of_another_server", later, Err(GrantInvalid)),
        Chain {
            certificates: &[],
            ..valid
        }
        .case("no_license", later, Err(GrantInvalid)),
        Chain {
            hello: &rogue_hello,
            certificates: std::slice::from_ref(&rogue_activated),
            ..valid
        }
        .case(
            "hello_certified_by_another_vendor",
            later,
            Err(ServerNotTrusted),
        ),
        Chain {
            hello: &swapped_key,
            ..valid
        }
        .case("hello_keys_not_certified", later, Err(ServerNotTrusted)),
        Chain {
            hello: &no_certificate,
            ..valid
        }
        .case("hello_without_certificate", later, Err(ServerNotTrusted)),
    ]
}

/// One usage report and its acknowledgement in the report session, and messages that must not
/// open: another number, ticket or direction, altered bytes.
fn session(
    ticket_key: &TicketKey,
    ticket: &str,
    contents: &TicketContents,
    key: &SessionKey,
) -> Session {
    let report_id = uuid::Uuid::now_v7().to_string();
    let request = ReportRequest {
        sent_at: T0 + 200,
        reports: vec![UsageReport {
            report_id: report_id.clone(),
            slice: tally_proto::slice::slice_of(T0),
            counts: BTreeMap::from([("scan".into(), 3), ("scan.symbology.qr".into(), 1)]),
        }],
    };
    let reply: Reply<ReportResponse> = Reply::Ok(ReportResponse {
        accepted: vec![report_id],
        duplicates: Vec::new(),
        refused: Vec::new(),
        exhausted: Vec::new(),
        server_time: T0 + 200,
    });
    let seq = 1;
    let message = |direction: Direction, plaintext: String| Message {
        direction: match direction {
            Direction::ToServer => "to_server",
            Direction::ToClient => "to_client",
        },
        seq,
        aad_hex: hex(&message_aad(direction, seq, ticket)),
        ct: key
            .seal(direction, seq, ticket, plaintext.as_bytes())
            .unwrap(),
        plaintext_json: plaintext,
    };
    let request = message(
        Direction::ToServer,
        serde_json::to_string(&request).unwrap(),
    );
    let reply = message(Direction::ToClient, serde_json::to_string(&reply).unwrap());
    let other_ticket = ticket_key.issue(key, contents).unwrap();
    let refused =
        |case: &str, to_server: bool, seq: u64, ticket: &str, ct: String| MessageFailure {
            case: format!("report_session.{case}"),
            direction: if to_server { "to_server" } else { "to_client" },
            seq,
            ticket: ticket.to_owned(),
            ct,
            expected_error: expected(if to_server {
                ErrorCode::BadEnvelope
            } else {
                ErrorCode::ServerUnreachable
            }),
        };
    let must_fail = vec![
        refused(
            "request_as_another_number",
            true,
            seq + 1,
            ticket,
            request.ct.clone(),
        ),
        refused(
            "request_with_another_ticket",
            true,
            seq,
            &other_ticket,
            request.ct.clone(),
        ),
        refused("request_altered", true, seq, ticket, flip(&request.ct)),
        refused("reply_read_as_request", true, seq, ticket, reply.ct.clone()),
        refused(
            "request_read_as_reply",
            false,
            seq,
            ticket,
            request.ct.clone(),
        ),
        refused("reply_altered", false, seq, ticket, flip(&reply.ct)),
    ];
    Session {
        ticket: ticket.to_owned(),
        session_key: b64_encode(key.as_bytes()),
        ticket_contents: contents.clone(),
        request_envelope: SessionEnvelope {
            v: ENVELOPE_VERSION,
            ticket: ticket.to_owned(),
            seq,
            ct: request.ct.clone(),
        },
        request,
        reply,
        must_fail,
    }
}
