//! Grant verification and the offline path: a verified grant is cached and used while no server
//! answers, until it expires, and never with a clock turned back.

use tally_crypto::SigningKey;
use tally_sdk::{ErrorCode, SdkError};

use crate::fixtures::*;

fn code(result: Result<tally_sdk::Authorization, SdkError>) -> ErrorCode {
    match result {
        Ok(a) => panic!("expected a refusal, got {a:?}"),
        Err(e) => e.code,
    }
}

#[test]
fn without_a_server_or_a_cached_grant_the_server_is_unreachable() {
    let f = Fixture::new();
    let e = f.offline_client().authorize().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerUnreachable);
    assert!(e.message.contains("127.0.0.1:9"), "{e}");
}

#[test]
fn a_verified_grant_is_used_offline_and_reported_as_cached() {
    let f = Fixture::new();
    let client = f.offline_client();
    let online = f.authorize_directly(&client);
    assert!(!online.cached);
    assert!(online.warnings.is_empty());

    f.clock.advance(3 * DAY);
    // A new process: the grant and its proof are read back from disk and verified again.
    let client = f.offline_client();
    let auth = client.authorize().unwrap();
    assert!(auth.cached);
    assert_eq!(auth.warnings, [ErrorCode::CachedGrantUsed]);
    assert_eq!(auth.grace_until, None);
    assert_eq!(auth.grant, online.grant);
    let status = client.status().unwrap();
    let summary = status.grant.unwrap();
    assert_eq!(summary.valid_until, T0 + 7 * DAY);
    assert_eq!(summary.renew_at, T0 + DAY);
    assert_eq!(summary.grace_end, GRACE_END);
    assert_eq!(summary.items, ["L-1-1"]);
    assert_eq!(summary.server_uuid, "server-1");
    // check() gives the same verdict without trying any server, and without the warning.
    let checked = client.check().unwrap();
    assert_eq!(checked.grant, online.grant);
    assert!(checked.warnings.is_empty());
}

#[test]
fn check_never_contacts_a_server() {
    let f = Fixture::new();
    let s = crate::online::server(&f);
    let client = f.client(&[&s.url]);
    assert_eq!(code(client.check()), ErrorCode::NoGrant);
    f.authorize_directly(&client);
    client.check().unwrap();
    f.clock.set(T0 + 7 * DAY);
    assert_eq!(code(client.check()), ErrorCode::GrantExpired);
    let b = s.behaviour();
    assert_eq!((b.hellos, b.authorize_requests.len()), (0, 0));
}

#[test]
fn a_license_in_its_grace_works_with_a_warning() {
    // The item ends a day after T0; its 7 grace days run to T0 + 8 days.
    let f = Fixture::with_item(item("L-1-1", T0 + DAY));
    let s = crate::online::server(&f);
    let client = f.client(&[&s.url]);
    let auth = client.authorize().unwrap();
    assert!(auth.warnings.is_empty());
    assert_eq!(auth.grant.valid_until, T0 + 7 * DAY);

    f.clock.set(T0 + 2 * DAY);
    let checked = client.check().unwrap();
    assert_eq!(checked.warnings, [ErrorCode::LicenseInGrace]);
    assert_eq!(checked.grace_until, Some(T0 + 8 * DAY));
    let offline = f.offline_client().authorize().unwrap();
    assert_eq!(
        offline.warnings,
        [ErrorCode::CachedGrantUsed, ErrorCode::LicenseInGrace]
    );
    // Renewed in grace, the grant lasts to the grace's end, not beyond.
    let renewed = client.authorize().unwrap();
    assert_eq!(renewed.warnings, [ErrorCode::LicenseInGrace]);
    assert_eq!(renewed.grant.valid_until, T0 + 8 * DAY);
    f.clock.set(T0 + 8 * DAY);
    assert_eq!(code(client.check()), ErrorCode::GrantExpired);
}

#[test]
fn offline_past_valid_until_the_grant_has_expired() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    f.clock.set(T0 + 7 * DAY - 1);
    assert!(client.authorize().unwrap().cached);
    client.check().unwrap();
    f.clock.set(T0 + 7 * DAY);
    assert_eq!(code(client.authorize()), ErrorCode::GrantExpired);
    assert_eq!(code(client.check()), ErrorCode::GrantExpired);
}

#[test]
fn a_clock_turned_back_refuses_the_cached_grant() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    f.clock.advance(DAY);
    assert!(client.authorize().unwrap().cached);
    f.clock.advance(-3600);
    assert_eq!(code(client.authorize()), ErrorCode::ClockRollback);
    assert_eq!(code(client.check()), ErrorCode::ClockRollback);
    // Also from a new process: the highest time seen is on disk.
    assert_eq!(
        code(f.offline_client().authorize()),
        ErrorCode::ClockRollback
    );
    // Small corrections are tolerated; a sane clock works again.
    f.clock.advance(3600 - 240);
    assert!(client.authorize().unwrap().cached);
    f.clock.advance(240 + 60);
    assert!(client.authorize().unwrap().cached);
}

#[test]
fn other_operations_also_raise_the_clock_mark() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    f.clock.advance(2 * DAY);
    client.record_usage("scan", 1).unwrap();
    f.clock.advance(-DAY);
    assert_eq!(code(client.authorize()), ErrorCode::ClockRollback);
}

#[test]
fn an_online_success_resets_the_clock_mark() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.clock.advance(DAY);
    client.record_usage("scan", 1).unwrap();
    f.clock.advance(-DAY);
    f.authorize_directly(&client); // the server vouched for this time
    assert!(client.authorize().unwrap().cached);
}

/// `accept_authorization` must refuse `response` and leave no grant behind.
fn refused(f: &Fixture, response: tally_proto::wire::AuthorizeResponse) -> SdkError {
    let client = f.offline_client();
    let e = client
        .accept_authorization(&f.server.identity, response)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::GrantInvalid, "{e}");
    assert_eq!(client.status().unwrap().grant, None);
    assert_eq!(code(client.authorize()), ErrorCode::ServerUnreachable);
    e
}

fn device(f: &Fixture) -> String {
    f.offline_client().device_uuid().to_owned()
}

#[test]
fn a_grant_signed_by_a_key_no_certificate_names_is_refused() {
    let f = Fixture::new();
    let rogue = SigningKey::generate().unwrap();
    let grant = f.grant_for(&device(&f));
    refused(
        &f,
        f.response_signed(&grant, &rogue, vec![f.certificate.clone()]),
    );

    // Nor may a server claim the rogue key as its own: no certificate vouches for it.
    let client = f.offline_client();
    let mut identity = f.server.identity.clone();
    identity.signing_key = rogue.verifying_key().to_base64();
    let response = f.response_signed(&grant, &rogue, vec![f.certificate.clone()]);
    let e = client
        .accept_authorization(&identity, response)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::GrantInvalid);
}

#[test]
fn a_certificate_signed_by_another_vendor_is_refused() {
    let f = Fixture::new();
    let other_vendor = SigningKey::generate().unwrap();
    let forged = certificate(
        &other_vendor,
        &f.server.identity,
        "L-1",
        vec![item("L-1-1", END)],
    );
    let grant = f.grant_for(&device(&f));
    refused(
        &f,
        f.response_signed(&grant, &f.server.signing, vec![forged]),
    );
    refused(&f, f.response_signed(&grant, &f.server.signing, vec![]));
}

#[test]
fn a_certificate_for_another_server_is_refused() {
    let f = Fixture::new();
    let elsewhere = ServerKeys::generate("server-2");
    let theirs = certificate(
        &f.vendor,
        &elsewhere.identity,
        "L-1",
        vec![item("L-1-1", END)],
    );
    let grant = f.grant_for(&device(&f));
    refused(
        &f,
        f.response_signed(&grant, &f.server.signing, vec![theirs]),
    );
}

#[test]
fn a_grant_signed_by_the_second_server_of_one_activation_verifies() {
    let f = Fixture::new();
    let (second, activated) = f.second_instance("server-2");
    let d = device(&f);
    let mut grant = f.grant_for(&d);
    grant.server_uuid = "server-2".into();
    let client = f.offline_client();
    let auth = client
        .accept_authorization(
            &second.identity,
            f.response_signed(&grant, &second.signing, vec![activated.clone()]),
        )
        .unwrap();
    assert_eq!(auth.grant.server_uuid, "server-2");
    // Held, it verifies again offline.
    let held = client.check().unwrap();
    assert_eq!(held.grant.server_uuid, "server-2");
    assert!(held.cached);
    // The first server of the same activation is as good.
    f.offline_client()
        .accept_authorization(
            &f.server.identity,
            f.response_signed(&f.grant_for(&d), &f.server.signing, vec![activated]),
        )
        .unwrap();
}

#[test]
fn a_grant_signed_by_a_server_the_activation_does_not_name_is_refused() {
    let f = Fixture::new();
    let (_, activated) = f.second_instance("server-2");
    let d = device(&f);
    let cases = [
        // A server of the same vendor that is not in the set.
        ServerKeys::generate("server-3"),
        // One that claims the second server's UUID with keys of its own.
        ServerKeys::generate("server-2"),
    ];
    for outsider in cases {
        let mut grant = f.grant_for(&d);
        grant.server_uuid = outsider.identity.uuid.clone();
        let client = f.offline_client();
        let e = client
            .accept_authorization(
                &outsider.identity,
                f.response_signed(&grant, &outsider.signing, vec![activated.clone()]),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::GrantInvalid, "{e}");
        assert!(
            e.message
                .contains("no license activated by the vendor for this server"),
            "{e}"
        );
        assert_eq!(client.status().unwrap().grant, None);
    }
    // Nor may a named server sign for another named one.
    let (second, activated) = f.second_instance("server-2");
    let grant = f.grant_for(&d);
    let e = f
        .offline_client()
        .accept_authorization(
            &second.identity,
            f.response_signed(&grant, &second.signing, vec![activated]),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::GrantInvalid);
    assert!(e.message.contains("names server server-1"), "{e}");
}

#[test]
fn a_grant_naming_an_item_in_no_certificate_is_refused() {
    let f = Fixture::new();
    let mut grant = f.grant_for(&device(&f));
    grant.items[0].item_id = "L-1-2".into();
    let e = refused(&f, f.response(&grant));
    assert!(e.message.contains("L-1-2"), "{e}");

    let mut grant = f.grant_for(&device(&f));
    grant.items[0].license_id = "L-9".into();
    refused(&f, f.response(&grant));

    // An item of another license the server holds is fine once its certificate comes along.
    let other = certificate(
        &f.vendor,
        &f.server.identity,
        "L-9",
        vec![item("L-1-1", END)],
    );
    let client = f.offline_client();
    client
        .accept_authorization(
            &f.server.identity,
            f.response_signed(&grant, &f.server.signing, vec![other]),
        )
        .unwrap();
}

#[test]
fn a_grant_claiming_more_than_the_license_is_refused() {
    let f = Fixture::new();
    let d = device(&f);
    let mut grant = f.grant_for(&d);
    grant.items[0].end += DAY;
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.items[0].modules.push("everything".into());
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.items[0].product = "printer".into();
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.items[0].grace_end += DAY;
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.items[0].license_type = tally_proto::license::LicenseType::PerUsage;
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.valid_until = GRACE_END + 1;
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&d);
    grant.items.clear();
    refused(&f, f.response(&grant));

    // Up to the grace's end is within the license.
    let mut grant = f.grant_for(&d);
    grant.valid_until = GRACE_END;
    f.offline_client()
        .accept_authorization(&f.server.identity, f.response(&grant))
        .unwrap();
}

#[test]
fn a_grant_for_another_device_or_server_is_refused() {
    let f = Fixture::new();
    let grant = f.grant_for("00000000-0000-4000-8000-000000000000");
    refused(&f, f.response(&grant));
    let mut grant = f.grant_for(&device(&f));
    grant.server_uuid = "server-2".into();
    refused(&f, f.response(&grant));
}

#[test]
fn a_tampered_cache_is_refused_offline() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    let path = f.state_dir().join("grant.json");
    let original = std::fs::read_to_string(&path).unwrap();

    // A longer validity in the payload, the old signature kept.
    let mut cache: serde_json::Value = serde_json::from_str(&original).unwrap();
    let payload = tally_crypto::b64_decode(cache["grant"]["payload"].as_str().unwrap()).unwrap();
    let mut grant: tally_proto::wire::Grant = serde_json::from_slice(&payload).unwrap();
    grant.valid_until += 365 * DAY;
    cache["grant"]["payload"] =
        tally_crypto::b64_encode(&serde_json::to_vec(&grant).unwrap()).into();
    std::fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
    assert_eq!(code(client.authorize()), ErrorCode::GrantInvalid);
    assert_eq!(client.status().unwrap().grant, None);

    // A server identity swapped for a rogue one that signed its own grant.
    let rogue = SigningKey::generate().unwrap();
    let mut cache: serde_json::Value = serde_json::from_str(&original).unwrap();
    cache["server"]["signing_key"] = rogue.verifying_key().to_base64().into();
    cache["grant"] = serde_json::to_value(
        tally_crypto::grant::sign_grant(&f.grant_for(client.device_uuid()), &rogue).unwrap(),
    )
    .unwrap();
    std::fs::write(&path, serde_json::to_vec(&cache).unwrap()).unwrap();
    assert_eq!(code(client.authorize()), ErrorCode::GrantInvalid);

    // A damaged file is a storage error, not a crash.
    std::fs::write(&path, b"{").unwrap();
    assert_eq!(code(client.authorize()), ErrorCode::LocalStorageFailed);
}
