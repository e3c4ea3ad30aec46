//! Importing licenses and the admin API's refusals.

use tally_proto::admin::{HandshakeView, ItemView};

use crate::common::*;

#[test]
fn import_creates_the_organization_and_its_default_code_once() {
    let s = TestServer::start();
    let file = s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]);
    let imported = s.import(&file);
    assert!(imported.newly_imported);
    assert_eq!(imported.default_handshake_code, "acme-default");
    assert_eq!(imported.items, ["L-1-1"]);
    let again = s.import(&file);
    assert!(!again.newly_imported);
    let codes: Vec<HandshakeView> = s.admin_ok("GET", "/handshakes", None);
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].items, ["L-1-1"]);
    let items: Vec<ItemView> = s.admin_ok("GET", "/items", None);
    assert_eq!((items[0].quantity, items[0].used), (5, 0));
}

fn assert_nothing_imported(s: &TestServer) {
    let items: Vec<ItemView> = s.admin_ok("GET", "/items", None);
    assert!(
        items.is_empty(),
        "a refused import left items behind: {items:?}"
    );
}

#[test]
fn tampered_files_are_refused_and_change_nothing() {
    let s = TestServer::start();
    let file = s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]);
    let tampered = file.replacen("\"quantity\": 5", "\"quantity\": 500", 1);
    assert_ne!(tampered, file);
    let (status, err) = s.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", tampered.into_bytes())),
    );
    assert_eq!((status, err.name.as_str()), (422, "invalid_license_file"));
    assert!(err.message.contains("signature"), "{}", err.message);
    assert_nothing_imported(&s);
}

#[test]
fn files_from_another_vendor_are_refused() {
    let s = TestServer::start();
    let other_vendor = tally_crypto::SigningKey::generate().unwrap();
    let issued = tally_crypto::document::issue_license(
        &license("L-9", "acme", vec![per_device("L-9-1", "scanner", 5, 10)]),
        &other_vendor,
    )
    .unwrap();
    let activated = tally_crypto::document::activate_license(
        &issued,
        &s.state.identity.activation_request(),
        &other_vendor,
        T0,
    )
    .unwrap();
    let (_, err) = s.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", activated.into_bytes())),
    );
    assert_eq!(err.name, "invalid_license_file");
    assert_nothing_imported(&s);
}

#[test]
fn unactivated_and_foreign_server_files_are_refused() {
    let s = TestServer::start();
    let other = TestServer::start();
    let lic = license("L-2", "acme", vec![per_device("L-2-1", "scanner", 5, 10)]);
    let issued = tally_crypto::document::issue_license(&lic, &s.vendor).unwrap();
    let (_, err) = s.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", issued.clone().into_bytes())),
    );
    assert_eq!(err.name, "license_not_activated");
    let for_other = tally_crypto::document::activate_license(
        &issued,
        &other.state.identity.activation_request(),
        &s.vendor,
        T0,
    )
    .unwrap();
    let (status, err) = s.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", for_other.into_bytes())),
    );
    assert_eq!(
        (status, err.name.as_str()),
        (422, "license_for_another_server")
    );
    assert!(err.message.contains(&other.state.identity.uuid));
    let (_, err) = s.admin_err("POST", "/licenses", Some(("text/plain", b"hello".to_vec())));
    assert_eq!(err.name, "invalid_license_file");
    assert_nothing_imported(&s);
}

#[test]
fn an_activation_of_the_previous_format_asks_for_a_new_one_which_replaces_it() {
    let s = TestServer::start();
    let lic = license("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]);
    // A file activated before server certificates existed: no certificate, format 1.
    let old = serde_json::json!({
        "format": "tally-activated-license/1",
        "license": lic,
        "server": s.state.identity.public(),
        "activated_at": T0,
    });
    let old = tally_crypto::document::seal(
        tally_crypto::document::DocumentKind::ActivatedLicense,
        &old,
        &s.vendor,
    )
    .unwrap();
    let (status, err) = s.admin_err("POST", "/licenses", Some(("text/plain", old.into_bytes())));
    assert_eq!((status, err.name.as_str()), (422, "invalid_license_file"));
    assert!(
        err.message.contains("tally-activated-license/1")
            && err.message.contains("tally vendor activate"),
        "{}",
        err.message
    );
    assert_nothing_imported(&s);
    // A new activation of an imported license replaces the file devices receive as proof.
    let first = s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]);
    s.import(&first);
    s.clock.advance(60);
    let issued = tally_crypto::document::issue_license(&lic, &s.vendor).unwrap();
    let again = tally_crypto::document::activate_license(
        &issued,
        &s.state.identity.activation_request(),
        &s.vendor,
        T0 + 60,
    )
    .unwrap();
    assert!(!s.import(&again).newly_imported);
    let hello: tally_proto::wire::ServerHello = {
        let mut resp = ureq::get(&format!("{}{}", s.url, tally_proto::wire::PATH_HELLO))
            .call()
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    let certificate = tally_crypto::document::verify_certificate(
        &hello.certificate.unwrap(),
        &s.vendor.verifying_key(),
    )
    .unwrap();
    assert_eq!(certificate.activated_at, T0 + 60);
}

#[test]
fn changed_hardware_refuses_imports_and_keeps_the_data() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    let second = s.activated("L-2", "acme", vec![per_device("L-2-1", "scanner", 5, 10)]);
    let (data, vendor) = s.stop();

    let moved = TestServer::start_in(data, vendor, "another-machine");
    assert!(moved.state.identity.mismatch.is_some());
    let (status, err) = moved.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", second.clone().into_bytes())),
    );
    assert_eq!((status, err.name.as_str()), (503, "identity_mismatch"));
    let items: Vec<ItemView> = moved.admin_ok("GET", "/items", None);
    assert_eq!(items.len(), 1, "the earlier license must still be there");
    let (data, vendor) = moved.stop();

    let back = TestServer::start_in(data, vendor, "machine-1");
    assert!(back.state.identity.mismatch.is_none());
    assert!(back.import(&second).newly_imported);
}

#[test]
fn the_admin_api_needs_the_token() {
    let s = TestServer::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let mut req = agent.get(&format!("{}/api/admin/items", s.url));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: tally_proto::ErrorBody =
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body.name, "unauthorized");
    }
}

#[test]
fn bad_handshake_requests_get_clear_errors_and_change_nothing() {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("L-1-1", "scanner", 5, 10)]));
    s.import(&s.activated("L-2", "other", vec![per_device("L-2-1", "scanner", 5, 10)]));
    let cases: [(&str, u16, &str); 7] = [
        (
            r#"{"organization":"acme","items":["nope"]}"#,
            404,
            "not_found",
        ),
        (
            r#"{"organization":"ghost","items":["L-1-1"]}"#,
            404,
            "not_found",
        ),
        (
            r#"{"organization":"acme","items":["L-2-1"]}"#,
            409,
            "conflict",
        ),
        (
            r#"{"organization":"acme","items":[]}"#,
            400,
            "invalid_input",
        ),
        (
            r#"{"code":"has space","organization":"acme","items":["L-1-1"]}"#,
            400,
            "invalid_input",
        ),
        (
            r#"{"code":"acme-default","organization":"acme","items":["L-1-1"]}"#,
            409,
            "conflict",
        ),
        (
            r#"{"organization":"acme","itemz":[]}"#,
            400,
            "invalid_input",
        ),
    ];
    for (body, status, name) in cases {
        let (got, err) = s.admin_err(
            "POST",
            "/handshakes",
            Some(("application/json", body.as_bytes().to_vec())),
        );
        assert_eq!(
            (got, err.name.as_str()),
            (status, name),
            "body {body}: {}",
            err.message
        );
    }
    let codes: Vec<HandshakeView> = s.admin_ok("GET", "/handshakes", None);
    assert_eq!(codes.len(), 2, "only the two default codes exist");

    let created: HandshakeView = s.admin_ok(
        "POST",
        "/handshakes",
        Some((
            "application/json",
            br#"{"code":"scanners","organization":"acme","items":["L-1-1"]}"#.to_vec(),
        )),
    );
    assert_eq!(created.code, "scanners");
    assert!(!created.is_default);
}

#[test]
fn statistics_queries_validate_dates() {
    let s = TestServer::start();
    let (_, err) = s.admin_err("GET", "/stats/usage?from=2026-02-30", None);
    assert_eq!(err.name, "invalid_input");
    let (_, err) = s.admin_err("GET", "/stats/usage?from=2026-06-02&to=2026-06-01", None);
    assert_eq!(err.name, "invalid_input");
    let rows: Vec<tally_proto::admin::UsageRow> =
        s.admin_ok("GET", "/stats/usage?from=2026-06-01", None);
    assert!(rows.is_empty());
}
