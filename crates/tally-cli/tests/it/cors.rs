//! Web pages as clients, by HTTP as a browser sends it: CORS answers for the origins the
//! handshake codes' domains name (a code edited by the admin is seen at once), and the `Origin`
//! of an opened request checked against its own code, and for per-domain licenses against the
//! domain it names. Requests without an `Origin` (native SDKs) are answered as before.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tally_crypto::envelope::{ReplyKey, seal_request};
use tally_crypto::keys::EncryptionPublicKey;
use tally_proto::license::LicenseType;
use tally_proto::wire::{
    AuthorizeRequest, AuthorizeResponse, PATH_AUTHORIZE, PATH_HELLO, PATH_SESSION_REPORT, Reply,
    RequestStamp, SealedResponse, ServerHello, ValidationField,
};

use crate::common::*;

const SHOP: &str = "https://shop.example.com";
const SHOP_EU: &str = "https://eu.shop.example.com:8443";
const PARTNER: &str = "https://partner.example.org";
const STRANGER: &str = "https://stranger.example.net";

/// What came back: status, the CORS headers a browser reads, the body.
struct Answer {
    status: u16,
    allow_origin: Option<String>,
    allow_methods: Option<String>,
    allow_headers: Option<String>,
    body: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (allow_origin, allow_methods, allow_headers) = (
        header("access-control-allow-origin"),
        header("access-control-allow-methods"),
        header("access-control-allow-headers"),
    );
    Answer {
        status: resp.status().as_u16(),
        allow_origin,
        allow_methods,
        allow_headers,
        body: resp.body_mut().read_to_string().unwrap(),
    }
}

/// The preflight a browser sends before posting JSON from a page on `origin`.
fn preflight(s: &TestServer, path: &str, origin: &str) -> Answer {
    answer(
        agent()
            .options(&format!("{}{path}", s.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .call()
            .unwrap(),
    )
}

fn hello(s: &TestServer, origin: Option<&str>) -> Answer {
    let mut req = agent().get(&format!("{}{PATH_HELLO}", s.url));
    if let Some(origin) = origin {
        req = req.header("Origin", origin);
    }
    answer(req.call().unwrap())
}

fn seal<T: Serialize>(s: &TestServer, req: &T) -> (Vec<u8>, ReplyKey) {
    let hello: ServerHello = serde_json::from_str(&hello(s, None).body).unwrap();
    let key = EncryptionPublicKey::from_base64(&hello.encryption_key).unwrap();
    let (envelope, reply) =
        seal_request(&key, "authorize", &serde_json::to_vec(req).unwrap()).unwrap();
    (serde_json::to_vec(&envelope).unwrap(), reply)
}

fn open<T: DeserializeOwned>(key: &ReplyKey, body: &str) -> Reply<T> {
    let sealed: SealedResponse = serde_json::from_str(body).unwrap();
    serde_json::from_slice(&key.open(&sealed).unwrap()).unwrap()
}

fn request(code: &str, device: &str, domain: Option<&str>) -> AuthorizeRequest {
    AuthorizeRequest {
        stamp: RequestStamp {
            request_id: tally_crypto::random_id().unwrap(),
            sent_at: T0,
        },
        organization: String::new(),
        handshake_code: code.into(),
        session_password: None,
        device_uuid: device.into(),
        product: "scanner".into(),
        version: None,
        modules: vec![],
        validation: ValidationField {
            domain: domain.map(str::to_owned),
            ..ValidationField::default()
        },
        friendly_name: None,
        buffer_days: None,
        instances: None,
    }
}

/// Posts a sealed authorization as a page on `origin` would (none: a native SDK); the CORS
/// header and the opened reply.
fn authorize(
    s: &TestServer,
    origin: Option<&str>,
    req: &AuthorizeRequest,
) -> (Option<String>, Reply<AuthorizeResponse>) {
    let (body, key) = seal(s, req);
    let mut post = agent()
        .post(&format!("{}{PATH_AUTHORIZE}", s.url))
        .header("Content-Type", "application/json");
    if let Some(origin) = origin {
        post = post.header("Origin", origin);
    }
    let a = answer(post.send(&body[..]).unwrap());
    (a.allow_origin, open(&key, &a.body))
}

fn refused_code(reply: Reply<AuthorizeResponse>) -> (u16, String) {
    match reply {
        Reply::Err(e) => (e.code, e.message),
        Reply::Ok(r) => panic!("expected a refusal, got a grant {:?}", r.grant),
    }
}

/// Codes `shop` (a per-domain item; domains shop.example.com and its subdomains) and `partner`
/// (a per-device item; domain partner.example.org), and `acme-default` naming no domain.
fn web_server() -> TestServer {
    let s = TestServer::start();
    let imported = s.import(&s.activated(
        "L-1",
        "acme",
        vec![
            typed("L-1-1", LicenseType::PerDomain, 3, 0),
            typed("L-1-2", LicenseType::PerDevice, 5, 0),
        ],
    ));
    assert_eq!(imported.items, ["L-1-1", "L-1-2"]);
    for (code, item, domains) in [
        (
            "shop",
            "L-1-1",
            json!(["shop.example.com", "*.shop.example.com"]),
        ),
        ("partner", "L-1-2", json!(["partner.example.org"])),
    ] {
        let created: tally_proto::admin::HandshakeView = s.admin_ok(
            "POST",
            "/handshakes",
            Some((
                "application/json",
                serde_json::to_vec(&json!({"code": code, "organization": "acme", "items": [item]}))
                    .unwrap(),
            )),
        );
        assert_eq!(created.code, code);
        update_code(&s, code, json!({"validation": {"domains": domains}}));
    }
    s
}

#[test]
fn a_preflight_passes_for_the_pages_some_code_names_and_no_other() {
    let s = web_server();
    for path in [PATH_AUTHORIZE, PATH_SESSION_REPORT] {
        for origin in [SHOP, SHOP_EU, PARTNER] {
            let a = preflight(&s, path, origin);
            assert_eq!(a.status, 200, "{path} {origin}");
            assert_eq!(a.allow_origin.as_deref(), Some(origin), "{path}");
            assert!(a.allow_methods.unwrap().contains("POST"));
            assert_eq!(a.allow_headers.as_deref(), Some("content-type"));
        }
        for origin in [STRANGER, "null", "https://shop.example.com.evil.test"] {
            assert_eq!(
                preflight(&s, path, origin).allow_origin,
                None,
                "{path} {origin}"
            );
        }
    }
    // The hello too: a page on a named origin may read it, and only such a page.
    let named = hello(&s, Some(PARTNER));
    assert_eq!(named.allow_origin.as_deref(), Some(PARTNER));
    assert_eq!(hello(&s, Some(STRANGER)).allow_origin, None);
    // A native SDK sends no Origin and gets the same hello, without CORS headers.
    let native = hello(&s, None);
    assert_eq!((native.status, native.allow_origin), (200, None));
    let (a, b): (ServerHello, ServerHello) = (
        serde_json::from_str(&named.body).unwrap(),
        serde_json::from_str(&native.body).unwrap(),
    );
    assert_eq!(a, b);
    // The admin API and the portal are not opened to pages.
    let admin = answer(
        agent()
            .get(&format!("{}/api/admin/handshakes", s.url))
            .header("Origin", SHOP)
            .header("Authorization", &format!("Bearer {}", s.token()))
            .call()
            .unwrap(),
    );
    assert_eq!((admin.status, admin.allow_origin), (200, None));
}

#[test]
fn a_domain_the_admin_adds_or_removes_is_seen_by_the_next_preflight() {
    let s = web_server();
    assert_eq!(preflight(&s, PATH_AUTHORIZE, STRANGER).allow_origin, None);
    update_code(
        &s,
        "partner",
        json!({"validation": {"domains": ["partner.example.org", "stranger.example.net"]}}),
    );
    assert_eq!(
        preflight(&s, PATH_AUTHORIZE, STRANGER)
            .allow_origin
            .as_deref(),
        Some(STRANGER)
    );
    update_code(&s, "partner", json!({"validation": {"domains": []}}));
    assert_eq!(preflight(&s, PATH_AUTHORIZE, STRANGER).allow_origin, None);
    assert_eq!(preflight(&s, PATH_AUTHORIZE, PARTNER).allow_origin, None);
    assert_eq!(
        preflight(&s, PATH_AUTHORIZE, SHOP).allow_origin.as_deref(),
        Some(SHOP)
    );
}

#[test]
fn a_page_authorizes_only_with_a_code_that_names_it_and_as_its_own_domain() {
    let s = web_server();
    // The shop's page, naming its own host: authorized, and the browser may read the answer.
    let (allow, reply) = authorize(
        &s,
        Some(SHOP),
        &request("shop", "page-1", Some("shop.example.com")),
    );
    assert_eq!(allow.as_deref(), Some(SHOP));
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");

    // The partner's page (a named origin, so it reads the answer) with the shop's code, even
    // naming the shop's domain: refused, sealed, with the stable code.
    let (allow, reply) = authorize(
        &s,
        Some(PARTNER),
        &request("shop", "page-2", Some("shop.example.com")),
    );
    assert_eq!(allow.as_deref(), Some(PARTNER));
    let (code, message) = refused_code(reply);
    assert_eq!(code, 118, "{message}");
    assert!(message.contains(PARTNER), "{message}");

    // A subdomain page of the shop (the code names it) that claims the shop's own domain, which
    // a per-domain license would count: refused, it may only count as itself.
    let (_, reply) = authorize(
        &s,
        Some(SHOP_EU),
        &request("shop", "page-3", Some("shop.example.com")),
    );
    let (code, message) = refused_code(reply);
    assert_eq!(code, 118);
    assert!(
        message.contains(
            "names domain `shop.example.com` but comes from a page on `eu.shop.example.com`"
        ),
        "{message}"
    );
    let (_, reply) = authorize(
        &s,
        Some(SHOP_EU),
        &request("shop", "page-3", Some("eu.shop.example.com")),
    );
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");

    // A code without domains opens to no page, whatever the request says.
    let (_, reply) = authorize(&s, Some(SHOP), &request("acme-default", "page-4", None));
    assert_eq!(refused_code(reply).0, 118);

    // Without a per-domain license to count it, the domain is only matched against the code's
    // patterns: the partner's page naming another of its patterns' hosts is not refused for it.
    update_code(
        &s,
        "partner",
        json!({"validation": {"domains": ["partner.example.org", "*.partner.example.org"]}}),
    );
    let (_, reply) = authorize(
        &s,
        Some(PARTNER),
        &request("partner", "page-5", Some("www.partner.example.org")),
    );
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
}

#[test]
fn native_sdks_send_no_origin_and_are_answered_as_before() {
    let s = web_server();
    // The request the subdomain page was refused: from a native SDK it is validated as always.
    let (allow, reply) = authorize(
        &s,
        None,
        &request("shop", "native-1", Some("shop.example.com")),
    );
    assert_eq!(allow, None);
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    // And the default code, which names no domain, serves native SDKs.
    let (_, reply) = authorize(&s, None, &request("acme-default", "native-2", None));
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    // A domain outside the patterns is still the validation mismatch it was.
    let (_, reply) = authorize(
        &s,
        None,
        &request("shop", "native-3", Some("other.example.com")),
    );
    assert_eq!(refused_code(reply).0, 116);
}
