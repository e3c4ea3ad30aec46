//! The chain of trust: only the vendor key is trusted a priori. A server is trusted when one of
//! its activated licenses, signed by the vendor, names its keys; a grant is trusted when that
//! server signed it and every granted item appears in such a license.

use tally_crypto::VerifyingKey;
use tally_crypto::document::verify_activated;
use tally_proto::ErrorCode;
use tally_proto::license::{ActivatedLicense, ServerPublicIdentity};
use tally_proto::wire::{Grant, SignedGrant};

use crate::error::{SdkError, SdkResult};

/// The certificates (activated license files) that verify under `vendor` and name `server`.
pub fn certified(
    vendor: &VerifyingKey,
    server: &ServerPublicIdentity,
    certificates: &[String],
) -> Vec<ActivatedLicense> {
    certificates
        .iter()
        .filter_map(|text| verify_activated(text, vendor).ok())
        .filter(|a| &a.server == server)
        .collect()
}

/// Verifies a signed grant for `device` against the certified server and licenses.
pub fn grant(
    vendor: &VerifyingKey,
    server: &ServerPublicIdentity,
    certificates: &[String],
    signed: &SignedGrant,
    device: &str,
) -> SdkResult<Grant> {
    let invalid = |m: &str| SdkError::new(ErrorCode::GrantInvalid, m.to_owned());
    let licenses = certified(vendor, server, certificates);
    if licenses.is_empty() {
        return Err(invalid(
            "no license activated by the vendor for this server comes with the grant",
        ));
    }
    let server_key = VerifyingKey::from_base64(&server.signing_key)
        .map_err(|_| invalid("the server signing key is malformed"))?;
    let grant = tally_crypto::grant::verify_grant(signed, &server_key)
        .map_err(|e| invalid(&format!("the grant signature is not valid: {e}")))?;
    if grant.server_uuid != server.uuid {
        return Err(invalid("the grant names another server"));
    }
    if grant.device_uuid != device {
        return Err(invalid("the grant was issued to another device"));
    }
    if grant.items.is_empty() {
        return Err(invalid("the grant holds no license item"));
    }
    for item in &grant.items {
        let known = licenses.iter().any(|l| {
            l.license.license_id == item.license_id
                && l.license
                    .items
                    .iter()
                    .any(|i| i.id == item.item_id && i.product == item.product)
        });
        if !known {
            return Err(invalid(&format!(
                "item {} is not in any license activated for this server",
                item.item_id
            )));
        }
    }
    Ok(grant)
}
