//! Importing activated license files, and listing what was imported.

use tally_crypto::document::{DocumentKind, verify_activated};
use tally_proto::ErrorCode;
use tally_proto::admin::{ImportedLicense, ItemView};
use tally_store::NewLicense;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Verifies that `text` is a license activated by the vendor for a set of servers this very
/// server is one of, then stores it (a new activation of a stored license replaces its file, e.g.
/// when an instance was added). The organization is created with a default handshake code on its
/// first license.
pub async fn import(state: &AppState, text: &str) -> ApiResult<ImportedLicense> {
    if let Some(problem) = &state.identity.mismatch {
        return Err(ApiError::new(ErrorCode::IdentityMismatch, problem.clone()));
    }
    match DocumentKind::detect(text) {
        Some(DocumentKind::ActivatedLicense) => {}
        Some(DocumentKind::License) => {
            return Err(ApiError::new(
                ErrorCode::LicenseNotActivated,
                "this is an issued license file; send this server's activation request to the vendor and import the activated file it returns",
            ));
        }
        Some(DocumentKind::ServerCertificate) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLicenseFile,
                "this is a server certificate; import the activated license file that contains it",
            ));
        }
        None => {
            return Err(ApiError::new(
                ErrorCode::InvalidLicenseFile,
                "not a Tally license file (the first line must be `-----BEGIN TALLY ACTIVATED LICENSE-----`)",
            ));
        }
    }
    let activated = verify_activated(text, &state.vendor_key)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLicenseFile, e.to_string()))?;
    let me = state.identity.public();
    if !activated.names(&me) {
        let keys = if activated.servers.iter().any(|s| s.uuid == me.uuid) {
            " (the file names this server's UUID with other keys: have it activated again from \
             this server's current activation request)"
        } else {
            ""
        };
        let servers = if activated.servers.len() == 1 {
            "server"
        } else {
            "servers"
        };
        return Err(ApiError::new(
            ErrorCode::LicenseForAnotherServer,
            format!(
                "the file is activated for {servers} {}, this server is {}{keys}",
                activated.server_uuids(),
                me.uuid
            ),
        ));
    }
    let license = activated.license;
    let org = license.organization.id.clone();
    let outcome = state
        .store
        .import_license(NewLicense {
            license: license.clone(),
            activated_text: text.to_owned(),
            default_code: format!("{org}-default"),
            imported_at: state.now(),
        })
        .await?;
    state.licenses_changed();
    tracing::info!(license = %license.license_id, organization = %org, new = outcome.newly_imported, "imported license");
    Ok(ImportedLicense {
        license_id: license.license_id,
        alias: license.alias,
        organization: org,
        items: license.items.into_iter().map(|i| i.id).collect(),
        default_handshake_code: outcome.default_code,
        newly_imported: outcome.newly_imported,
    })
}

/// Every license item with its live usage.
pub async fn items(state: &AppState) -> ApiResult<Vec<ItemView>> {
    let rows = state.store.items(state.now()).await?;
    Ok(rows
        .into_iter()
        .map(|r| ItemView {
            grace_end: r.item.grace_end(),
            offline_days: tally_core::validity::offline_days(
                &r.item,
                state.settings.buffer_days,
                None,
            ),
            item_id: r.item.id,
            license_id: r.license_id,
            organization: r.organization,
            product: r.item.product,
            modules: r.item.modules,
            license_type: r.item.license_type,
            quantity: r.item.quantity,
            used: r.used,
            start: r.item.start,
            end: r.item.end,
            grace_percent: r.item.grace_percent,
            active_window: r.item.active_window,
        })
        .collect())
}
