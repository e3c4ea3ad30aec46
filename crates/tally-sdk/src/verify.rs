//! The chain of trust. Only the vendor key is trusted a priori: a server is trusted when a server
//! certificate signed by the vendor names its keys (its hello shows its own), and a grant when
//! that server signed it for this device and every granted item is in a license the vendor
//! activated for a set of servers that includes that server (sent with the grant), within what
//! the vendor signed.

use std::collections::BTreeSet;

use tally_crypto::VerifyingKey;
use tally_crypto::document::{verify_activated, verify_certificate};
use tally_proto::license::{ActivatedLicense, LicenseItem, ServerPublicIdentity};
use tally_proto::wire::{Grant, GrantedItem, SignedGrant};

use crate::error::{SdkError, SdkResult};

/// Whether `certificate` (a hello's) is the vendor's certificate of exactly `server`; the error
/// says what is wrong.
pub fn certified(
    vendor: &VerifyingKey,
    server: &ServerPublicIdentity,
    certificate: Option<&str>,
) -> Result<(), String> {
    let Some(text) = certificate else {
        return Err("the server shows no license the vendor activated for it".into());
    };
    let certificate = verify_certificate(text, vendor)
        .map_err(|e| format!("the server's certificate is not the vendor's: {e}"))?;
    if &certificate.server != server {
        return Err("the server's certificate names other keys than the server shows".into());
    }
    Ok(())
}

/// The activated license files that verify under `vendor` and name exactly `server` (its UUID and
/// keys) among their servers. Others are ignored, whatever they claim.
fn activated_for(
    vendor: &VerifyingKey,
    server: &ServerPublicIdentity,
    certificates: &[String],
) -> Vec<ActivatedLicense> {
    certificates
        .iter()
        .filter_map(|text| verify_activated(text, vendor).ok())
        .filter(|a| a.names(server))
        .collect()
}

/// Verifies `signed` for `device`: signed by `server`, which `certificates` prove, and every
/// item backed by one of them. Any failure is `GrantInvalid`.
pub fn grant(
    vendor: &VerifyingKey,
    server: &ServerPublicIdentity,
    certificates: &[String],
    signed: &SignedGrant,
    device: &str,
) -> SdkResult<Grant> {
    let licenses = activated_for(vendor, server, certificates);
    if licenses.is_empty() {
        return Err(SdkError::grant_invalid(
            "no license activated by the vendor for this server comes with the grant",
        ));
    }
    let server_key = VerifyingKey::from_base64(&server.signing_key).map_err(|e| {
        SdkError::grant_invalid(format!("the server signing key is malformed: {e}"))
    })?;
    let grant = tally_crypto::grant::verify_grant(signed, &server_key).map_err(|e| {
        SdkError::grant_invalid(format!("the grant is not signed by the server: {e}"))
    })?;
    if grant.server_uuid != server.uuid {
        return Err(SdkError::grant_invalid(format!(
            "the grant names server {}, not {}",
            grant.server_uuid, server.uuid
        )));
    }
    if grant.device_uuid != device {
        return Err(SdkError::grant_invalid(format!(
            "the grant was issued to device {}, not to this one",
            grant.device_uuid
        )));
    }
    if grant.items.is_empty() {
        return Err(SdkError::grant_invalid("the grant holds no license item"));
    }
    let mut latest_end = i64::MIN;
    for item in &grant.items {
        let Some(signed_item) = licensed_item(&licenses, item) else {
            return Err(SdkError::grant_invalid(format!(
                "item {} of license {} is not in any license the vendor activated for this server",
                item.item_id, item.license_id
            )));
        };
        if !within(item, signed_item) {
            return Err(SdkError::grant_invalid(format!(
                "item {} claims more than the vendor's license grants",
                item.item_id
            )));
        }
        latest_end = latest_end.max(signed_item.grace_end());
    }
    if grant.valid_until > latest_end {
        return Err(SdkError::grant_invalid(
            "the grant claims validity beyond the end of its licenses and their grace",
        ));
    }
    Ok(grant)
}

fn licensed_item<'a>(
    licenses: &'a [ActivatedLicense],
    item: &GrantedItem,
) -> Option<&'a LicenseItem> {
    licenses
        .iter()
        .filter(|l| l.license.license_id == item.license_id)
        .flat_map(|l| l.license.items.iter())
        .find(|i| i.id == item.item_id)
}

/// The granted item is the signed one or a restriction of it.
fn within(granted: &GrantedItem, signed: &LicenseItem) -> bool {
    let modules: BTreeSet<&String> = signed.modules.iter().collect();
    granted.product == signed.product
        && granted.license_type == signed.license_type
        && granted.end <= signed.end
        && granted.grace_end <= signed.grace_end()
        && granted.modules.iter().all(|m| modules.contains(m))
}
