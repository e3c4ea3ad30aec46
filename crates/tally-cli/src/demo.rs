//! `tally serve --demo`: everything a newcomer needs to see Tally work, made in the data
//! directory: a demo vendor key, a license activated for this server and imported, and a client
//! configuration to run `tally client` against it.

use std::path::PathBuf;

use anyhow::Context;
use tally_crypto::SigningKey;
use tally_crypto::keys::{parse_vendor_key_file, vendor_key_file};
use tally_proto::license::{
    ActiveWindow, LICENSE_FORMAT, License, LicenseItem, LicenseType, Organization,
};
use tally_server::{AppState, Settings};

use crate::client::ClientFile;

pub const DEMO_ORG: &str = "demo";
pub const DEMO_PRODUCT: &str = "demo-app";

fn demo_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("demo")
}

/// Loads or creates the demo vendor key and makes the server trust it.
pub fn prepare(settings: &mut Settings) -> anyhow::Result<SigningKey> {
    let dir = demo_dir(settings);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("vendor.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(text) => parse_vendor_key_file(&text)
            .with_context(|| format!("bad demo key {}", path.display()))?,
        Err(_) => {
            let key = SigningKey::generate()?;
            tally_server::identity::write_private(&path, vendor_key_file(&key).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            key
        }
    };
    let public = key.verifying_key().to_base64();
    if settings
        .vendor_public_key
        .as_deref()
        .is_some_and(|k| k != public)
    {
        tracing::warn!("--demo replaces the configured vendor key with the demo vendor key");
    }
    settings.vendor_public_key = Some(public);
    Ok(key)
}

/// Issues, activates and imports the demo license once, and writes the client configuration.
pub async fn install(state: &AppState, vendor: &SigningKey) -> anyhow::Result<()> {
    let now = state.now();
    let already = state
        .store
        .licenses()
        .await?
        .iter()
        .any(|l| l.license.organization.id == DEMO_ORG);
    if !already {
        let license = License {
            format: LICENSE_FORMAT.into(),
            license_id: "DEMO-1".into(),
            organization: Organization {
                id: DEMO_ORG.into(),
                name: "Demo Organization".into(),
            },
            alias: "Demo license".into(),
            issued_at: now,
            items: vec![LicenseItem {
                id: "DEMO-1-1".into(),
                product: DEMO_PRODUCT.into(),
                versions: None,
                modules: vec!["basic".into(), "export".into()],
                license_type: LicenseType::PerDevice,
                quantity: 5,
                start: now - 86_400,
                end: now + 365 * 86_400,
                grace_percent: 10,
                active_window: ActiveWindow::Days30,
                metric: None,
                max_offline_days: None,
                grace_days: None,
            }],
        };
        let issued = tally_crypto::document::issue_license(&license, vendor)?;
        let activated = tally_crypto::document::activate_license(
            &issued,
            &state.identity.activation_request(),
            vendor,
            now,
        )?;
        tally_server::service::licenses::import(state, &activated)
            .await
            .map_err(|e| anyhow::anyhow!("importing the demo license failed: {e}"))?;
    }
    let dir = demo_dir(&state.settings);
    let port = state.settings.listen.port();
    let client = ClientFile {
        servers: vec![format!("http://127.0.0.1:{port}")],
        vendor_public_key: vendor.verifying_key().to_base64(),
        state_dir: dir.join("client-state"),
        organization: DEMO_ORG.into(),
        handshake_code: String::new(),
        session_password: None,
        product: DEMO_PRODUCT.into(),
        version: None,
        modules: vec!["basic".into()],
        friendly_name: Some("demo device".into()),
    };
    let client_path = dir.join("client.toml");
    std::fs::write(&client_path, toml::to_string_pretty(&client)?)
        .with_context(|| format!("cannot write {}", client_path.display()))?;
    let token_hint = state
        .settings
        .data_dir
        .join(tally_server::state::ADMIN_TOKEN_FILE);
    tracing::info!(
        "demo ready: organization `{DEMO_ORG}`, handshake code `{DEMO_ORG}-default`, 5 devices of `{DEMO_PRODUCT}`.\n  \
         try:  tally client --config {c} authorize\n        \
         tally client --config {c} record scan 3 && tally client --config {c} flush\n        \
         tally admin --data-dir {d} stats\n  (admin token in {t})",
        c = client_path.display(),
        d = state.settings.data_dir.display(),
        t = token_hint.display(),
    );
    Ok(())
}
