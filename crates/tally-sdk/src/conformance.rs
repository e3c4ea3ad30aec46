//! Cross-language conformance: the protocol test vectors of `docs/sdk/test-vectors.json` (their
//! layout is described in `docs/sdk/test-vectors.md`), checked alike by the Rust SDK, the C ABI,
//! the Python binding and the TypeScript SDK.
//!
//! The vectors give secret keys, sealed bytes and the plaintexts expected inside, so a checker
//! *opens and verifies* rather than reproducing random nonces: an authorize request opened with
//! the server's HPKE secret key, its reply opened with the key exported from the same HPKE
//! context, grant chains verified (or refused with a stated stable code) at a given time, and a
//! report-session message with its reply opened with the session key, number and ticket. The
//! JSON texts inside must also be exactly what this version's wire types write, so a change of the
//! protocol shows here as a stale vector file.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tally_crypto::envelope::{REPLY_KEY_LABEL, SESSION_KEY_LABEL, hpke_info, open_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_crypto::session::{Direction, SessionKey, TICKET_NONCE, TicketContents, TicketKey};
use tally_crypto::{EncryptionKeyPair, SigningKey, VerifyingKey, b64_decode};
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, Envelope, Grant, PROTOCOL_VERSION, Reply, ReportRequest,
    ReportResponse, SealedResponse, ServerHello, SessionEnvelope, SignedGrant,
};
use tally_proto::{ErrorCode, UnixSeconds};

use crate::error::{SdkError, SdkResult};
use crate::verify;

/// The `format` of the vector file this checker reads.
const FORMAT: &str = "tally-test-vectors/1";

/// Checks every case of the test vectors in `json` (the text of `docs/sdk/test-vectors.json`);
/// returns how many cases were checked. Errors are `InvalidInput` and name the case that failed.
pub fn check_test_vectors(json: &str) -> SdkResult<usize> {
    let vectors: Vectors = serde_json::from_str(json)
        .map_err(|e| SdkError::invalid_input(format!("the test vectors are malformed: {e}")))?;
    let mut checked = Checked(0);
    checked.run("format", check_format(&vectors))?;
    checked.run("constants", check_constants(&vectors.constants))?;
    let keys = vectors
        .keys
        .parse()
        .map_err(|problem| failed("keys", &problem))?;
    checked.0 += 1;
    let authorize = &vectors.authorize;
    checked.run("authorize.request", check_request(&keys, authorize))?;
    checked.run("authorize.reply", check_reply(&keys, authorize))?;
    for case in &authorize.request_must_fail {
        checked.run(&case.case, check_request_refused(&keys, case))?;
    }
    for case in &authorize.reply_must_fail {
        checked.run(&case.case, check_reply_refused(&keys, authorize, case))?;
    }
    for case in &vectors.grant_chain {
        checked.run(&case.case, check_chain(&keys, case))?;
    }
    let session = &vectors.report_session;
    checked.run(
        "report_session.ticket",
        check_ticket(&keys, authorize, session),
    )?;
    checked.run(
        "report_session.request",
        check_message::<ReportRequest>(session, &session.request, Direction::ToServer)
            .and_then(|()| check_request_envelope(session)),
    )?;
    checked.run(
        "report_session.reply",
        check_message::<Reply<ReportResponse>>(session, &session.reply, Direction::ToClient),
    )?;
    for case in &session.must_fail {
        checked.run(&case.case, check_message_refused(session, case))?;
    }
    Ok(checked.0)
}

/// How many cases passed so far.
struct Checked(usize);

impl Checked {
    fn run(&mut self, case: &str, result: Result<(), String>) -> SdkResult<()> {
        result.map_err(|problem| failed(case, &problem))?;
        self.0 += 1;
        Ok(())
    }
}

fn failed(case: &str, problem: &str) -> SdkError {
    SdkError::invalid_input(format!("test vector `{case}`: {problem}"))
}

/// The whole file.
#[derive(Deserialize)]
struct Vectors {
    format: String,
    protocol: u8,
    constants: Constants,
    keys: KeyTexts,
    authorize: AuthorizeVectors,
    grant_chain: Vec<ChainCase>,
    report_session: SessionVectors,
}

/// The fixed inputs of the constructions, for a port that seals as well as opens.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Constants {
    hpke_mode: String,
    hpke_kem_id: u16,
    hpke_kdf_id: u16,
    hpke_aead_id: u16,
    hpke_info_authorize: String,
    hpke_aad_hex: String,
    hpke_export_reply_key_label: String,
    hpke_export_session_key_label: String,
    hpke_export_length: usize,
    reply_aead: String,
    reply_nonce_hex: String,
    document_signing_context: String,
    grant_signing_context: String,
    session_aead: String,
    session_nonce_length: usize,
    session_direction_to_server: u8,
    session_direction_to_client: u8,
}

impl Constants {
    /// What this implementation uses.
    fn current() -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Self {
            hpke_mode: "base".into(),
            // RFC 9180 identifiers of DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
            hpke_kem_id: 0x0020,
            hpke_kdf_id: 0x0001,
            hpke_aead_id: 0x0003,
            hpke_info_authorize: text(&hpke_info("authorize")),
            hpke_aad_hex: String::new(),
            hpke_export_reply_key_label: text(REPLY_KEY_LABEL),
            hpke_export_session_key_label: text(SESSION_KEY_LABEL),
            hpke_export_length: 32,
            reply_aead: "ChaCha20-Poly1305".into(),
            reply_nonce_hex: "00".repeat(12),
            document_signing_context: text(tally_crypto::document::SIGNING_CONTEXT),
            grant_signing_context: text(tally_crypto::grant::GRANT_CONTEXT),
            session_aead: "XChaCha20-Poly1305".into(),
            session_nonce_length: TICKET_NONCE,
            session_direction_to_server: Direction::ToServer as u8,
            session_direction_to_client: Direction::ToClient as u8,
        }
    }
}

/// The secret and public keys of the vendor and the server, as text.
#[derive(Deserialize)]
struct KeyTexts {
    vendor_secret_key: String,
    vendor_public_key: String,
    server_uuid: String,
    server_signing_secret_key: String,
    server_signing_public_key: String,
    server_encryption_secret_key: String,
    server_encryption_public_key: String,
}

/// The keys decoded.
struct Keys {
    vendor: VerifyingKey,
    server_signing: SigningKey,
    server_encryption: EncryptionKeyPair,
    server: ServerPublicIdentity,
}

impl KeyTexts {
    /// Decodes the keys; each public key must be its secret key's.
    fn parse(&self) -> Result<Keys, String> {
        let vendor = SigningKey::from_base64(&self.vendor_secret_key)
            .map_err(|e| format!("vendor_secret_key: {e}"))?;
        if vendor.verifying_key().to_base64() != self.vendor_public_key {
            return Err("vendor_public_key is not the vendor secret key's".into());
        }
        let signing = SigningKey::from_base64(&self.server_signing_secret_key)
            .map_err(|e| format!("server_signing_secret_key: {e}"))?;
        if signing.verifying_key().to_base64() != self.server_signing_public_key {
            return Err("server_signing_public_key is not the server signing key's".into());
        }
        let encryption = EncryptionKeyPair::from_secret_base64(&self.server_encryption_secret_key)
            .map_err(|e| format!("server_encryption_secret_key: {e}"))?;
        if encryption.public().to_base64() != self.server_encryption_public_key {
            return Err("server_encryption_public_key is not the server encryption key's".into());
        }
        Ok(Keys {
            vendor: vendor.verifying_key(),
            server_signing: signing,
            server_encryption: encryption,
            server: ServerPublicIdentity {
                uuid: self.server_uuid.clone(),
                signing_key: self.server_signing_public_key.clone(),
                encryption_key: self.server_encryption_public_key.clone(),
            },
        })
    }
}

/// One authorization: the sealed request, the keys its HPKE context exports, the sealed reply.
#[derive(Deserialize)]
struct AuthorizeVectors {
    purpose: String,
    request_json: String,
    envelope: Envelope,
    reply_key: String,
    session_key: String,
    reply_json: String,
    sealed_reply: SealedResponse,
    request_must_fail: Vec<RequestFailure>,
    reply_must_fail: Vec<ReplyFailure>,
}

/// An envelope the server must not open as `open_as`.
#[derive(Deserialize)]
struct RequestFailure {
    case: String,
    open_as: String,
    envelope: Envelope,
    expected_error: Expected,
}

/// A sealed reply the client must not open with the authorization's reply key.
#[derive(Deserialize)]
struct ReplyFailure {
    case: String,
    sealed_reply: SealedResponse,
    expected_error: Expected,
}

/// A stable error code, by number and name.
#[derive(Deserialize)]
struct Expected {
    code: u16,
    name: String,
}

/// One chain of trust to judge at `at` for `device_uuid`.
#[derive(Deserialize)]
struct ChainCase {
    case: String,
    hello: ServerHello,
    certificates: Vec<String>,
    grant: SignedGrant,
    device_uuid: String,
    at: UnixSeconds,
    #[serde(default)]
    expected_grant: Option<Grant>,
    #[serde(default)]
    expected_error: Option<Expected>,
}

/// The report session the authorization opened: one message each way, and messages that must
/// not open.
#[derive(Deserialize)]
struct SessionVectors {
    ticket: String,
    session_key: String,
    ticket_contents: TicketContents,
    request: SessionMessage,
    request_envelope: SessionEnvelope,
    reply: SessionMessage,
    must_fail: Vec<SessionFailure>,
}

#[derive(Deserialize)]
struct SessionMessage {
    direction: String,
    seq: u64,
    aad_hex: String,
    plaintext_json: String,
    ct: String,
}

#[derive(Deserialize)]
struct SessionFailure {
    case: String,
    direction: String,
    seq: u64,
    ticket: String,
    ct: String,
    expected_error: Expected,
}

fn check_format(v: &Vectors) -> Result<(), String> {
    if v.format != FORMAT {
        return Err(format!(
            "format `{}`, this checker reads `{FORMAT}`",
            v.format
        ));
    }
    if v.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "vectors of protocol {}, this SDK speaks {PROTOCOL_VERSION}",
            v.protocol
        ));
    }
    Ok(())
}

fn check_constants(stated: &Constants) -> Result<(), String> {
    let current = Constants::current();
    if *stated == current {
        return Ok(());
    }
    let (stated, current) = (to_value(stated)?, to_value(&current)?);
    let differing: Vec<String> = current
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| stated.get(key.as_str()) != Some(value))
        .map(|(key, value)| format!("{key} should be {value}"))
        .collect();
    Err(differing.join("; "))
}

fn to_value(value: &impl Serialize) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// The server opens the request; the keys both sides export from its HPKE context are the stated
/// ones.
fn check_request(keys: &Keys, v: &AuthorizeVectors) -> Result<(), String> {
    let opened = open_request(&keys.server_encryption, &v.purpose, &v.envelope)
        .map_err(|e| format!("the server cannot open the request: {e}"))?;
    same_text(&opened.plaintext, &v.request_json, "the request plaintext")?;
    wire_text::<AuthorizeRequest>(&v.request_json)?;
    if b64_decode(&v.reply_key).ok().as_deref() != Some(opened.reply_key.reply_key_bytes()) {
        return Err("reply_key is not the HPKE export of the request".into());
    }
    let session = opened.reply_key.session_key();
    if b64_decode(&v.session_key).ok().as_deref() != Some(session.as_bytes()) {
        return Err("session_key is not the HPKE export of the request".into());
    }
    Ok(())
}

/// The client opens the reply with the request's reply key; it holds a grant for the requesting
/// device that verifies under the vendor key.
fn check_reply(keys: &Keys, v: &AuthorizeVectors) -> Result<(), String> {
    let key = reply_key(keys, v)?;
    let plain = key
        .open(&v.sealed_reply)
        .map_err(|e| format!("the reply does not open with the request's reply key: {e}"))?;
    same_text(&plain, &v.reply_json, "the reply plaintext")?;
    // Both constructions are deterministic: a port can check its sealing and signing byte for
    // byte against them.
    let resealed = key
        .seal(v.reply_json.as_bytes())
        .map_err(|e| e.to_string())?;
    if resealed != v.sealed_reply {
        return Err("sealing reply_json again with the reply key gives other bytes".into());
    }
    let Reply::Ok(response) = wire_text::<Reply<AuthorizeResponse>>(&v.reply_json)? else {
        return Err("the reply is a refusal, not a grant".into());
    };
    let request: AuthorizeRequest = wire_text(&v.request_json)?;
    verify::grant(
        &keys.vendor,
        &keys.server,
        &response.certificates,
        &response.grant,
        &request.device_uuid,
    )
    .map_err(|e| format!("the reply's grant does not verify: {e}"))?;
    let payload = b64_decode(&response.grant.payload).map_err(|e| e.to_string())?;
    let mut message = tally_crypto::grant::GRANT_CONTEXT.to_vec();
    message.extend_from_slice(&payload);
    if tally_crypto::b64_encode(&keys.server_signing.sign(&message)) != response.grant.signature {
        return Err("signing the grant again with the server key gives another signature".into());
    }
    Ok(())
}

/// The reply key, exported again from the request (checked by `check_request`).
fn reply_key(
    keys: &Keys,
    v: &AuthorizeVectors,
) -> Result<tally_crypto::envelope::ReplyKey, String> {
    open_request(&keys.server_encryption, &v.purpose, &v.envelope)
        .map(|opened| opened.reply_key)
        .map_err(|e| format!("the server cannot open the request: {e}"))
}

fn check_request_refused(keys: &Keys, case: &RequestFailure) -> Result<(), String> {
    expect_code(&case.expected_error, ErrorCode::BadEnvelope)?;
    match open_request(&keys.server_encryption, &case.open_as, &case.envelope) {
        Ok(_) => Err(format!("the server opened it as `{}`", case.open_as)),
        Err(_) => Ok(()),
    }
}

fn check_reply_refused(
    keys: &Keys,
    v: &AuthorizeVectors,
    case: &ReplyFailure,
) -> Result<(), String> {
    // A reply the client cannot open counts as no answer from that server.
    expect_code(&case.expected_error, ErrorCode::ServerUnreachable)?;
    match reply_key(keys, v)?.open(&case.sealed_reply) {
        Ok(_) => Err("the client opened it".into()),
        Err(_) => Ok(()),
    }
}

/// Judges a chain as the SDK does: the hello's certificate, then the grant with its activated
/// licenses, then the time.
fn judge_chain(vendor: &VerifyingKey, case: &ChainCase) -> SdkResult<Grant> {
    let hello = &case.hello;
    let server = ServerPublicIdentity {
        uuid: hello.uuid.clone(),
        signing_key: hello.signing_key.clone(),
        encryption_key: hello.encryption_key.clone(),
    };
    let untrusted = |problem: String| SdkError::new(ErrorCode::ServerNotTrusted, problem);
    verify::certified(vendor, &server, hello.certificate.as_deref()).map_err(untrusted)?;
    EncryptionPublicKey::from_base64(&server.encryption_key)
        .map_err(|e| untrusted(e.to_string()))?;
    let grant = verify::grant(
        vendor,
        &server,
        &case.certificates,
        &case.grant,
        &case.device_uuid,
    )?;
    if case.at >= grant.valid_until {
        let code = if grant.seat_until.is_some() {
            ErrorCode::SeatLapsed
        } else {
            ErrorCode::GrantExpired
        };
        return Err(SdkError::new(
            code,
            format!("valid until {}, judged at {}", grant.valid_until, case.at),
        ));
    }
    Ok(grant)
}

fn check_chain(keys: &Keys, case: &ChainCase) -> Result<(), String> {
    let verdict = judge_chain(&keys.vendor, case);
    match (&case.expected_grant, &case.expected_error, verdict) {
        (Some(expected), None, Ok(grant)) if grant == *expected => Ok(()),
        (Some(_), None, Ok(grant)) => Err(format!(
            "the grant verifies but differs from expected_grant: {grant:?}"
        )),
        (Some(_), None, Err(e)) => Err(format!("refused ({e}), expected a grant")),
        (None, Some(expected), Err(e)) => {
            expect_code(expected, e.code).map_err(|m| format!("{m} (refused: {e})"))
        }
        (None, Some(expected), Ok(_)) => Err(format!(
            "accepted, expected {} {}",
            expected.code, expected.name
        )),
        _ => Err("give exactly one of expected_grant and expected_error".into()),
    }
}

/// The ticket is the one the authorization's reply opened the session with, and the server's
/// ticket key (derived from its signing key) finds the session key and the device in it.
fn check_ticket(keys: &Keys, a: &AuthorizeVectors, s: &SessionVectors) -> Result<(), String> {
    let reply = wire_text::<Reply<AuthorizeResponse>>(&a.reply_json)?;
    let granted = match reply {
        Reply::Ok(AuthorizeResponse {
            session: Some(granted),
            ..
        }) => granted,
        _ => return Err("the authorization's reply opened no report session".into()),
    };
    if granted.ticket != s.ticket {
        return Err("the ticket is not the one the authorization's reply holds".into());
    }
    if s.session_key != a.session_key {
        return Err("the session key is not the one the authorization exported".into());
    }
    let opened = TicketKey::for_server(&keys.server_signing)
        .open(&s.ticket)
        .map_err(|e| format!("the server cannot open the ticket: {e}"))?;
    if b64_decode(&s.session_key).ok().as_deref() != Some(opened.key.as_bytes()) {
        return Err("the ticket holds another session key".into());
    }
    if opened.contents != s.ticket_contents {
        return Err(format!(
            "the ticket holds {:?}, not ticket_contents",
            opened.contents
        ));
    }
    Ok(())
}

fn session_key(s: &SessionVectors) -> Result<SessionKey, String> {
    let bytes: [u8; 32] = b64_decode(&s.session_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or("session_key must be 32 bytes of base64")?;
    Ok(SessionKey::from_bytes(bytes))
}

fn direction(name: &str) -> Result<Direction, String> {
    match name {
        "to_server" => Ok(Direction::ToServer),
        "to_client" => Ok(Direction::ToClient),
        other => Err(format!(
            "direction `{other}` (expected to_server or to_client)"
        )),
    }
}

/// A session message opens with the session key, its direction, number and the ticket, to the
/// stated plaintext, which is what the wire type `T` writes.
fn check_message<T: Serialize + DeserializeOwned>(
    s: &SessionVectors,
    m: &SessionMessage,
    expected: Direction,
) -> Result<(), String> {
    let way = direction(&m.direction)?;
    if way != expected {
        return Err(format!("direction should be {expected:?}"));
    }
    let aad = tally_crypto::session::message_aad(way, m.seq, &s.ticket);
    if m.aad_hex != hex(&aad) {
        return Err(format!("aad_hex should be {}", hex(&aad)));
    }
    let plain = session_key(s)?
        .open(way, m.seq, &s.ticket, &m.ct)
        .map_err(|e| format!("it does not open: {e}"))?;
    same_text(&plain, &m.plaintext_json, "the plaintext")?;
    wire_text::<T>(&m.plaintext_json).map(|_| ())
}

/// The HTTP body of the request is the session envelope around the request message.
fn check_request_envelope(s: &SessionVectors) -> Result<(), String> {
    let e = &s.request_envelope;
    let expected = SessionEnvelope {
        v: tally_crypto::envelope::ENVELOPE_VERSION,
        ticket: s.ticket.clone(),
        seq: s.request.seq,
        ct: s.request.ct.clone(),
    };
    if *e != expected {
        return Err(
            "request_envelope must carry the version, ticket, seq and ct of the request".into(),
        );
    }
    Ok(())
}

fn check_message_refused(s: &SessionVectors, case: &SessionFailure) -> Result<(), String> {
    let way = direction(&case.direction)?;
    // The server answers a message it cannot open with `bad_envelope`; the client takes a reply
    // it cannot open for no answer.
    let code = match way {
        Direction::ToServer => ErrorCode::BadEnvelope,
        Direction::ToClient => ErrorCode::ServerUnreachable,
    };
    expect_code(&case.expected_error, code)?;
    match session_key(s)?.open(way, case.seq, &case.ticket, &case.ct) {
        Ok(_) => Err("it opened".into()),
        Err(_) => Ok(()),
    }
}

fn expect_code(expected: &Expected, code: ErrorCode) -> Result<(), String> {
    if expected.code == code.code() && expected.name == code.name() {
        Ok(())
    } else {
        Err(format!(
            "expected_error is {} {}, the outcome is {} {}",
            expected.code,
            expected.name,
            code.code(),
            code.name()
        ))
    }
}

fn same_text(bytes: &[u8], stated: &str, what: &str) -> Result<(), String> {
    if bytes == stated.as_bytes() {
        Ok(())
    } else {
        Err(format!(
            "{what} differs: opened `{}`",
            String::from_utf8_lossy(bytes)
        ))
    }
}

/// Parses `text` as the wire type `T` and requires it to be exactly what `T` writes, so a change
/// of the wire types makes the vectors stale.
fn wire_text<T: Serialize + DeserializeOwned>(text: &str) -> Result<T, String> {
    let value: T = serde_json::from_str(text)
        .map_err(|e| format!("not a {}: {e}", std::any::type_name::<T>()))?;
    let written = serde_json::to_string(&value).map_err(|e| e.to_string())?;
    if written != text {
        return Err(format!(
            "this version writes {} as `{written}`",
            std::any::type_name::<T>()
        ));
    }
    Ok(value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_are_refused_with_a_reason() {
        let e = check_test_vectors("{").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("malformed"), "{e}");
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0, 1, 0xab]), "0001ab");
    }
}
