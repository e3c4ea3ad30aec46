//! Keys, licenses and grants made the way the vendor tool and the server make them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_core::ManualClock;
use tally_crypto::{EncryptionKeyPair, SigningKey};
use tally_proto::UnixSeconds;
use tally_proto::license::{
    ACTIVATION_REQUEST_FORMAT, ActivationRequest, ActiveWindow, LICENSE_FORMAT, License,
    LicenseItem, LicenseType, Organization, ServerPublicIdentity,
};
use tally_proto::wire::{AuthorizeResponse, Grant, GrantedItem};
use tally_sdk::{Client, Config};

/// A fixed start time (2026-05-28), on a slice boundary.
pub const T0: UnixSeconds = 1_780_000_020;
pub const DAY: i64 = 86_400;
/// End of the fixture's license item: a year after `T0`.
pub const END: UnixSeconds = T0 + 365 * DAY;
/// End of its grace: the default 7 grace days after `END`.
pub const GRACE_END: UnixSeconds = END + 7 * DAY;
/// Port 9 (discard): nothing listens, the connection is refused at once.
pub const UNREACHABLE: &str = "http://127.0.0.1:9";

/// A server identity: its keys and the vendor's activation of a license for it.
#[derive(Clone)]
pub struct ServerKeys {
    pub signing: SigningKey,
    pub encryption: EncryptionKeyPair,
    pub identity: ServerPublicIdentity,
}

impl ServerKeys {
    pub fn generate(uuid: &str) -> Self {
        let signing = SigningKey::generate().unwrap();
        let encryption = EncryptionKeyPair::generate().unwrap();
        let identity = ServerPublicIdentity {
            uuid: uuid.into(),
            signing_key: signing.verifying_key().to_base64(),
            encryption_key: encryption.public().to_base64(),
        };
        Self {
            signing,
            encryption,
            identity,
        }
    }
}

/// A per-device item for product `scanner` (modules qr and ocr) with default offline and grace
/// days (7 each).
pub fn item(id: &str, end: UnixSeconds) -> LicenseItem {
    LicenseItem {
        id: id.into(),
        product: "scanner".into(),
        versions: None,
        modules: vec!["qr".into(), "ocr".into()],
        license_type: LicenseType::PerDevice,
        quantity: 5,
        start: T0 - DAY,
        end,
        grace_percent: 10,
        active_window: ActiveWindow::default(),
        metric: None,
        max_offline_days: None,
        grace_days: None,
    }
}

/// The license file of `license_id` with `items`, issued by `vendor` for Acme.
fn issued(vendor: &SigningKey, license_id: &str, items: Vec<LicenseItem>) -> String {
    let license = License {
        format: LICENSE_FORMAT.into(),
        license_id: license_id.into(),
        organization: Organization {
            id: "acme".into(),
            name: "Acme".into(),
        },
        alias: "Acme 2026".into(),
        issued_at: T0 - DAY,
        items,
    };
    tally_crypto::document::issue_license(&license, vendor).unwrap()
}

/// An activated license file of `license_id` for `server`, signed by `vendor`. Its server
/// certificate (what a hello shows) is inside: see [`server_certificate`].
pub fn certificate(
    vendor: &SigningKey,
    server: &ServerPublicIdentity,
    license_id: &str,
    items: Vec<LicenseItem>,
) -> String {
    let request = ActivationRequest {
        format: ACTIVATION_REQUEST_FORMAT.into(),
        server: server.clone(),
        labels: vec!["machine-id".into()],
    };
    let text = issued(vendor, license_id, items);
    tally_crypto::document::activate_license(&text, &request, vendor, T0 - DAY).unwrap()
}

/// An activated license file of `license_id` for the instances `servers` (one server certificate
/// each), signed by `vendor`.
pub fn activated_for(
    vendor: &SigningKey,
    servers: &[ServerPublicIdentity],
    license_id: &str,
    items: Vec<LicenseItem>,
) -> String {
    let text = issued(vendor, license_id, items);
    tally_crypto::document::activate_for_servers(&text, servers, vendor, T0 - DAY).unwrap()
}

/// The server certificate of `server` inside an activated license file, else its first one,
/// read without verifying anything (a forged file yields a forged certificate, as a rogue server
/// would show).
pub fn server_certificate(activated: &str, server: &ServerPublicIdentity) -> String {
    let (_, payload) = tally_crypto::document::read_unverified(activated).unwrap();
    let servers: Vec<ServerPublicIdentity> =
        serde_json::from_value(payload["servers"].clone()).unwrap();
    let at = servers.iter().position(|s| s == server).unwrap_or(0);
    payload["certificates"][at].as_str().unwrap().to_owned()
}

/// The license and its first item inside an activated license file, read without verifying.
pub fn first_item(activated: &str) -> (String, LicenseItem) {
    let (_, payload) = tally_crypto::document::read_unverified(activated).unwrap();
    let license: License = serde_json::from_value(payload["license"].clone()).unwrap();
    (license.license_id, license.items[0].clone())
}

/// A vendor, one server it activated a license for, a clock and a state directory.
pub struct Fixture {
    pub vendor: SigningKey,
    pub server: ServerKeys,
    /// The item of license `L-1`: `L-1-1`, per-device unless made otherwise, ending at [`END`].
    pub item: LicenseItem,
    /// License `L-1` activated for `server`.
    pub certificate: String,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_type(LicenseType::PerDevice)
    }

    /// A fixture whose item `L-1-1` counts by `license_type`.
    pub fn with_type(license_type: LicenseType) -> Self {
        Self::with_item(LicenseItem {
            license_type,
            ..item("L-1-1", END)
        })
    }

    /// A fixture whose license `L-1` holds `item` (give it the id `L-1-1`).
    pub fn with_item(item: LicenseItem) -> Self {
        let vendor = SigningKey::generate().unwrap();
        let server = ServerKeys::generate("server-1");
        let certificate = certificate(&vendor, &server.identity, "L-1", vec![item.clone()]);
        Self {
            vendor,
            server,
            item,
            certificate,
            clock: ManualClock::new(T0),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Another server of the same vendor (a standby), with license `L-1` activated for it.
    pub fn standby(&self, uuid: &str) -> (ServerKeys, String) {
        let keys = ServerKeys::generate(uuid);
        let certificate = certificate(&self.vendor, &keys.identity, "L-1", vec![self.item.clone()]);
        (keys, certificate)
    }

    /// Another instance of the same vendor's customer (own keys) and license `L-1` activated
    /// once for both the fixture's server and it, in that order.
    pub fn second_instance(&self, uuid: &str) -> (ServerKeys, String) {
        let keys = ServerKeys::generate(uuid);
        let activated = activated_for(
            &self.vendor,
            &[self.server.identity.clone(), keys.identity.clone()],
            "L-1",
            vec![self.item.clone()],
        );
        (keys, activated)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config(&self, servers: &[&str]) -> Config {
        let mut c = Config::new(
            servers.iter().map(|s| s.to_string()).collect(),
            &self.vendor.verifying_key().to_base64(),
            self.state_dir(),
            "scanner",
        );
        c.organization = "acme".into();
        c.timeout = Duration::from_secs(5);
        c
    }

    pub fn client(&self, servers: &[&str]) -> Client {
        Client::with_clock(self.config(servers), Arc::new(self.clock.clone())).unwrap()
    }

    /// A client whose only server never answers.
    pub fn offline_client(&self) -> Client {
        self.client(&[UNREACHABLE])
    }

    /// The grant the server would issue now for a per-device item `L-1-1`: valid 7 days, renewed
    /// after one.
    pub fn grant_for(&self, device_uuid: &str) -> Grant {
        let now = tally_core::Clock::now(&self.clock);
        Grant {
            grant_id: tally_crypto::random_id().unwrap(),
            server_uuid: self.server.identity.uuid.clone(),
            device_uuid: device_uuid.into(),
            organization: "acme".into(),
            handshake_code: "acme-default".into(),
            items: vec![GrantedItem {
                license_id: "L-1".into(),
                item_id: "L-1-1".into(),
                product: "scanner".into(),
                modules: vec!["qr".into(), "ocr".into()],
                license_type: self.item.license_type,
                end: self.item.end,
                grace_end: self.item.grace_end(),
            }],
            issued_at: now,
            valid_until: now + 7 * DAY,
            renew_at: now + DAY,
            seat_until: None,
        }
    }

    /// `grant` signed by `signer` and sent with `certificates`, without a report session (as
    /// `accept_authorization` takes it).
    pub fn response_signed(
        &self,
        grant: &Grant,
        signer: &SigningKey,
        certificates: Vec<String>,
    ) -> AuthorizeResponse {
        AuthorizeResponse {
            grant: tally_crypto::grant::sign_grant(grant, signer).unwrap(),
            certificates,
            server_time: grant.issued_at,
            session: None,
        }
    }

    /// `grant` as the server answers it: signed with its key, with its activated license.
    pub fn response(&self, grant: &Grant) -> AuthorizeResponse {
        self.response_signed(grant, &self.server.signing, vec![self.certificate.clone()])
    }

    /// Authorizes `client` from a fixture response, as if a server had answered (no report
    /// session comes with it).
    pub fn authorize_directly(&self, client: &Client) -> tally_sdk::Authorization {
        let response = self.response(&self.grant_for(client.device_uuid()));
        client
            .accept_authorization(&self.server.identity, response)
            .unwrap()
    }
}

/// Polls `done` every few milliseconds for up to 10 s (a background thread at work); true once
/// it holds.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}
