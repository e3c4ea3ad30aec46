//! One activated license for a named set of server instances, each with its own identity: every
//! instance imports it and shows its own certificate, an instance it does not name refuses it, a
//! new activation with one more instance replaces the stored file, and a client whose
//! configuration lists the instances authorizes through whichever answers.

use tally_crypto::SigningKey;
use tally_crypto::document::{activate_for_servers, issue_license, verify_certificate};
use tally_proto::license::ServerPublicIdentity;
use tally_proto::wire::{PATH_HELLO, ServerHello};

use crate::cli::{command, ok, succeeds};
use crate::common::*;
use crate::processes::{TwoInstances, activate_for_two, free_port, requested_uuid, serve};

fn hello(url: &str) -> ServerHello {
    let mut resp = ureq::get(&format!("{url}{PATH_HELLO}")).call().unwrap();
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

/// The server the certificate in `url`'s hello names, checked against `vendor`.
fn certified_server(url: &str, vendor: &SigningKey) -> (ServerPublicIdentity, i64) {
    let text = hello(url).certificate.expect("a certificate in the hello");
    let certificate = verify_certificate(&text, &vendor.verifying_key()).unwrap();
    (certificate.server, certificate.activated_at)
}

/// The item `<license_id>-1`: 5 devices of `scanner`.
fn item(license_id: &str) -> tally_proto::license::LicenseItem {
    per_device(&format!("{license_id}-1"), "scanner", 5, 10)
}

/// License `license_id` of organization `org` activated at `at` for `servers`, in that order.
pub fn activated_for(
    vendor: &SigningKey,
    license_id: &str,
    org: &str,
    servers: &[&TestServer],
    at: i64,
) -> String {
    let issued = issue_license(&license(license_id, org, vec![item(license_id)]), vendor).unwrap();
    let servers: Vec<ServerPublicIdentity> =
        servers.iter().map(|s| s.state.identity.public()).collect();
    activate_for_servers(&issued, &servers, vendor, at).unwrap()
}

/// A server on its own machine (`machine`), trusting `vendor`.
fn instance(vendor: &SigningKey, machine: &str) -> TestServer {
    TestServer::start_in(tempfile::tempdir().unwrap(), vendor.clone(), machine)
}

#[test]
fn each_named_instance_imports_the_license_and_shows_its_own_certificate() {
    let vendor = SigningKey::generate().unwrap();
    let a = instance(&vendor, "machine-1");
    let b = instance(&vendor, "machine-2");
    let c = instance(&vendor, "machine-3");
    let file = activated_for(&vendor, "L-1", "acme", &[&a, &b], T0);
    for s in [&a, &b] {
        assert!(s.import(&file).newly_imported);
        let (server, at) = certified_server(&s.url, &vendor);
        assert_eq!(server, s.state.identity.public(), "its own certificate");
        assert_eq!(at, T0);
    }

    // An instance the file does not name refuses it, naming the servers it is for.
    let (status, err) = c.admin_err(
        "POST",
        "/licenses",
        Some(("text/plain", file.clone().into())),
    );
    assert_eq!(
        (status, err.name.as_str()),
        (422, "license_for_another_server")
    );
    assert_eq!(
        err.message,
        format!(
            "the file is activated for servers {}, {}, this server is {}",
            a.state.identity.uuid, b.state.identity.uuid, c.state.identity.uuid
        )
    );
    assert!(hello(&c.url).certificate.is_none());
    // Nor does an instance with a named UUID but keys of its own (a new data directory on the
    // same machine).
    let twin = instance(&vendor, "machine-1");
    assert_eq!(twin.state.identity.uuid, a.state.identity.uuid);
    let (_, err) = twin.admin_err("POST", "/licenses", Some(("text/plain", file.into())));
    assert_eq!(err.name, "license_for_another_server");
    assert_eq!(
        err.message,
        format!(
            "the file is activated for servers {}, {}, this server is {} (the file names this \
             server's UUID with other keys: have it activated again from this server's current \
             activation request)",
            a.state.identity.uuid, b.state.identity.uuid, a.state.identity.uuid
        )
    );

    // A new activation that adds the third instance: imported there, and on the others it
    // replaces the stored file (the hello shows the new activation).
    let again = activated_for(&vendor, "L-1", "acme", &[&a, &b, &c], T0 + 60);
    for s in [&a, &b] {
        assert!(!s.import(&again).newly_imported);
        assert_eq!(
            certified_server(&s.url, &vendor),
            (s.state.identity.public(), T0 + 60)
        );
    }
    assert!(c.import(&again).newly_imported);
    assert_eq!(
        certified_server(&c.url, &vendor),
        (c.state.identity.public(), T0 + 60)
    );

    // Each instance grants through its own key, proven by the one file.
    for s in [&a, &b, &c] {
        let mut config = crate::e2e::config(s, "device");
        config.servers = vec![s.url.clone()];
        let auth = crate::e2e::client(s, config).authorize().unwrap();
        assert!(!auth.cached);
        assert_eq!(auth.grant.server_uuid, s.state.identity.uuid);
    }
}

#[test]
fn a_license_another_instance_stored_is_found_by_reading_the_store_again() {
    let vendor = SigningKey::generate().unwrap();
    let a = instance(&vendor, "machine-1");
    let b = instance(&vendor, "machine-2");
    a.import(&activated_for(&vendor, "L-1", "acme", &[&a, &b], T0));
    // The proofs are read and kept in memory by a first authorization.
    let device = crate::e2e::client(&a, crate::e2e::config(&a, "first"));
    assert_eq!(device.authorize().unwrap().grant.items[0].license_id, "L-1");

    // Another instance on the same database imports a license of organization `beta`: it is in
    // the store, and this instance was not told.
    let text = activated_for(&vendor, "L-2", "beta", &[&a, &b], T0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(a.state.store.import_license(tally_store::NewLicense {
            license: license("L-2", "beta", vec![item("L-2")]),
            activated_text: text,
            default_code: "beta-default".into(),
            imported_at: T0,
        }))
        .unwrap();

    // Its grant comes with its activated license as proof.
    let mut config = crate::e2e::config(&a, "beta-device");
    config.organization = "beta".into();
    let auth = crate::e2e::client(&a, config).authorize().unwrap();
    assert_eq!(auth.grant.items[0].license_id, "L-2");
}

#[test]
fn two_serve_processes_share_one_activation_and_a_client_fails_over_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let TwoInstances {
        public,
        labels_b,
        activated: out,
    } = activate_for_two(
        d,
        "L-CLUSTER",
        &["product=scanner,type=per-device,quantity=5,start=2020-01-01,end=2099-01-01"],
    );
    let (uuid_a, uuid_b) = (
        requested_uuid(&d.join("a.json")),
        requested_uuid(&d.join("b.json")),
    );
    assert_eq!(
        out,
        format!(
            "activated license L-CLUSTER for 2 servers to acme.activated\n  server {uuid_a} \
             (from a.json)\n  server {uuid_b} (from b.json)\n"
        )
    );

    let (listen_a, listen_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let server_a = serve(d, "a", &listen_a, &public, r#"["machine-id"]"#, &[]);
    let _server_b = serve(d, "b", &listen_b, &public, labels_b, &[]);
    let vendor = tally_crypto::VerifyingKey::from_base64(&public).unwrap();
    for (data, listen, uuid) in [("a", &listen_a, &uuid_a), ("b", &listen_b, &uuid_b)] {
        let url = format!("http://{listen}");
        let out = ok(
            d,
            &[
                "admin",
                "--server",
                &url,
                "--data-dir",
                data,
                "import",
                "acme.activated",
            ],
        );
        assert!(out.starts_with("imported license L-CLUSTER"), "{out}");
        let shown = hello(&url).certificate.unwrap();
        assert_eq!(
            &verify_certificate(&shown, &vendor).unwrap().server.uuid,
            uuid
        );
    }

    std::fs::write(
        d.join("client.toml"),
        format!(
            "servers = [\"http://{listen_a}\", \"http://{listen_b}\"]\n\
             vendor_public_key = \"{public}\"\nstate_dir = \"device\"\n\
             organization = \"acme\"\nproduct = \"scanner\"\n"
        ),
    )
    .unwrap();
    let client = |args: &[&str]| {
        let mut all = vec!["client", "--config", "client.toml"];
        all.extend_from_slice(args);
        succeeds(&mut command(d, &all))
    };
    let out = client(&["authorize"]);
    assert!(
        out.starts_with(&format!("authorized by server {uuid_a}\n")),
        "{out}"
    );

    drop(server_a);
    let out = client(&["authorize"]);
    assert!(
        out.starts_with(&format!("authorized by server {uuid_b}\n")),
        "the second instance answers: {out}"
    );
    client(&["record", "scan", "2"]);
    let out = client(&["flush"]);
    assert!(out.starts_with("sent 1 report: 1 acknowledged"), "{out}");
}
