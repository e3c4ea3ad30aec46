//! Keys, licenses and grants made the way the vendor tool and the server make them.

use std::path::PathBuf;
use std::sync::Arc;

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
    }
}

/// An activated license file (a "certificate") of `license_id` for `server`, signed by `vendor`.
pub fn certificate(
    vendor: &SigningKey,
    server: &ServerPublicIdentity,
    license_id: &str,
    items: Vec<LicenseItem>,
) -> String {
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
    let text = tally_crypto::document::issue_license(&license, vendor).unwrap();
    let request = ActivationRequest {
        format: ACTIVATION_REQUEST_FORMAT.into(),
        server: server.clone(),
        labels: vec!["machine-id".into()],
    };
    tally_crypto::document::activate_license(&text, &request, vendor, T0 - DAY).unwrap()
}

/// A vendor, one server it activated a license for, a clock and a state directory.
pub struct Fixture {
    pub vendor: SigningKey,
    pub server: ServerKeys,
    /// License `L-1` with item `L-1-1` (scanner, modules qr and ocr), ending in a year.
    pub certificate: String,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let vendor = SigningKey::generate().unwrap();
        let server = ServerKeys::generate("server-1");
        let certificate = certificate(
            &vendor,
            &server.identity,
            "L-1",
            vec![item("L-1-1", T0 + 365 * DAY)],
        );
        Self {
            vendor,
            server,
            certificate,
            clock: ManualClock::new(T0),
            dir: tempfile::tempdir().unwrap(),
        }
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
        c.timeout = std::time::Duration::from_secs(5);
        c
    }

    pub fn client(&self, servers: &[&str]) -> Client {
        Client::with_clock(self.config(servers), Arc::new(self.clock.clone())).unwrap()
    }

    /// A client whose only server never answers.
    pub fn offline_client(&self) -> Client {
        self.client(&[UNREACHABLE])
    }

    /// The grant the server would issue now: item `L-1-1`, valid 7 days.
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
                license_type: LicenseType::PerDevice,
                end: T0 + 365 * DAY,
            }],
            issued_at: now,
            valid_until: now + 7 * DAY,
            seat_until: None,
        }
    }

    /// `grant` signed by `signer` and sent with `certificates`.
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

    /// `grant` as the server answers it: signed with its key, with its certificate.
    pub fn response(&self, grant: &Grant) -> AuthorizeResponse {
        self.response_signed(grant, &self.server.signing, vec![self.certificate.clone()])
    }

    /// Authorizes `client` from a fixture response, as if a server had answered.
    pub fn authorize_directly(&self, client: &Client) -> tally_sdk::Authorization {
        let response = self.response(&self.grant_for(client.device_uuid()));
        client
            .accept_authorization(&self.server.identity, response)
            .unwrap()
    }
}
