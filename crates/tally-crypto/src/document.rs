//! Armored signed documents (license files). The readable JSON payload and its armor lines are
//! signed byte for byte, so changing any byte of a file makes verification fail:
//!
//! ```text
//! -----BEGIN TALLY LICENSE-----
//! { …pretty JSON… }
//! -----BEGIN TALLY SIGNATURE-----
//! <base64 Ed25519 signature>
//! -----END TALLY LICENSE-----
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_proto::UnixSeconds;
use tally_proto::license::{
    ACTIVATED_FORMAT, ActivatedLicense, ActivationRequest, CERTIFICATE_FORMAT, LICENSE_FORMAT,
    License, ServerCertificate,
};

use crate::{CryptoError, CryptoResult, SigningKey, VerifyingKey, b64_decode, b64_encode};

/// Domain separation: a signature over a document can never be mistaken for another message.
const SIGNING_CONTEXT: &[u8] = b"tally-document/1\n";
const SIGNATURE_LINE: &str = "-----BEGIN TALLY SIGNATURE-----\n";

/// The kinds of signed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A license file as issued by the vendor.
    License,
    /// A license file the vendor bound to one server.
    ActivatedLicense,
    /// The vendor's binding of a server's keys to a license id, without the license.
    ServerCertificate,
}

impl DocumentKind {
    fn label(self) -> &'static str {
        match self {
            DocumentKind::License => "LICENSE",
            DocumentKind::ActivatedLicense => "ACTIVATED LICENSE",
            DocumentKind::ServerCertificate => "SERVER CERTIFICATE",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            DocumentKind::License => "license file",
            DocumentKind::ActivatedLicense => "activated license file",
            DocumentKind::ServerCertificate => "server certificate",
        }
    }

    fn begin_line(self) -> String {
        format!("-----BEGIN TALLY {}-----\n", self.label())
    }

    fn end_line(self) -> String {
        format!("-----END TALLY {}-----\n", self.label())
    }

    /// Which kind a text claims to be, from its first line (before any verification).
    pub fn detect(text: &str) -> Option<DocumentKind> {
        [
            DocumentKind::ActivatedLicense,
            DocumentKind::License,
            DocumentKind::ServerCertificate,
        ]
        .into_iter()
        .find(|k| text.starts_with(&k.begin_line()))
    }
}

fn signed_message(signed_part: &str) -> Vec<u8> {
    let mut msg = SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(signed_part.as_bytes());
    msg
}

/// Serializes `payload` as pretty JSON, armors it and signs it.
pub fn seal<T: Serialize>(
    kind: DocumentKind,
    payload: &T,
    key: &SigningKey,
) -> CryptoResult<String> {
    let json = serde_json::to_string_pretty(payload)
        .map_err(|e| CryptoError::Malformed(format!("cannot serialize payload: {e}")))?;
    let signed_part = format!("{}{json}\n{SIGNATURE_LINE}", kind.begin_line());
    let signature = key.sign(&signed_message(&signed_part));
    Ok(format!(
        "{signed_part}{}\n{}",
        b64_encode(&signature),
        kind.end_line()
    ))
}

/// Splits an armored document into its signed part, its JSON payload and its signature, checking
/// the armor strictly. Does not verify the signature.
fn split(text: &str, kind: DocumentKind) -> CryptoResult<(&str, &str, Vec<u8>)> {
    let Some(found) = DocumentKind::detect(text) else {
        return Err(CryptoError::Malformed(format!(
            "not a Tally {}: the first line must be `{}`",
            kind.description(),
            kind.begin_line().trim_end()
        )));
    };
    if found != kind {
        return Err(CryptoError::WrongKind {
            expected: kind.description(),
            found: found.description().to_owned(),
        });
    }
    let sig_at = text
        .find(&format!("\n{SIGNATURE_LINE}"))
        .ok_or_else(|| CryptoError::Malformed("the signature section is missing".into()))?;
    let signed_end = sig_at + 1 + SIGNATURE_LINE.len();
    let signed_part = &text[..signed_end];
    let payload = &text[kind.begin_line().len()..sig_at];
    let rest = &text[signed_end..];
    let expected_tail_len = 88 + 1 + kind.end_line().len();
    if rest.len() != expected_tail_len || !rest.ends_with(&kind.end_line()) {
        return Err(CryptoError::Malformed(
            "the signature section must hold one base64 signature line and the END line, nothing else"
                .into(),
        ));
    }
    let sig_text = &rest[..88];
    if rest.as_bytes()[88] != b'\n' {
        return Err(CryptoError::Malformed(
            "the signature line is malformed".into(),
        ));
    }
    let signature = b64_decode(sig_text)?;
    Ok((signed_part, payload, signature))
}

/// Verifies an armored document against `key` and parses its payload.
pub fn open<T: DeserializeOwned>(
    text: &str,
    kind: DocumentKind,
    key: &VerifyingKey,
) -> CryptoResult<T> {
    let (signed_part, payload, signature) = split(text, kind)?;
    key.verify(&signed_message(signed_part), &signature)?;
    serde_json::from_str(payload).map_err(|e| {
        CryptoError::Malformed(format!(
            "the payload is not a valid {}: {e}",
            kind.description()
        ))
    })
}

/// Parses the payload of a document without checking its signature (for `inspect`).
pub fn read_unverified(text: &str) -> CryptoResult<(DocumentKind, serde_json::Value)> {
    let kind = DocumentKind::detect(text).ok_or_else(|| {
        CryptoError::Malformed("not a Tally license file (unknown first line)".into())
    })?;
    let (_, payload, _) = split(text, kind)?;
    let value = serde_json::from_str(payload)
        .map_err(|e| CryptoError::Malformed(format!("the payload is not JSON: {e}")))?;
    Ok((kind, value))
}

/// Issues a license file: checks the payload's own consistency, then signs it.
pub fn issue_license(license: &License, vendor: &SigningKey) -> CryptoResult<String> {
    if license.format != LICENSE_FORMAT {
        return Err(CryptoError::Malformed(format!(
            "license format must be `{LICENSE_FORMAT}`"
        )));
    }
    seal(DocumentKind::License, license, vendor)
}

/// Verifies an issued license file.
pub fn verify_license(text: &str, vendor: &VerifyingKey) -> CryptoResult<License> {
    let license: License = open(text, DocumentKind::License, vendor)?;
    if license.format != LICENSE_FORMAT {
        return Err(CryptoError::Malformed(format!(
            "unsupported license format `{}`",
            license.format
        )));
    }
    Ok(license)
}

/// Binds a verified license file to the server that sent `request`: the activated license (for
/// the server and the devices it authorizes) with, inside it, the server certificate (for anyone).
pub fn activate_license(
    license_text: &str,
    request: &ActivationRequest,
    vendor: &SigningKey,
    now: UnixSeconds,
) -> CryptoResult<String> {
    let license = verify_license(license_text, &vendor.verifying_key())?;
    // Refuse a request whose keys are not well-formed: the server could never use them.
    VerifyingKey::from_base64(&request.server.signing_key)?;
    crate::keys::EncryptionPublicKey::from_base64(&request.server.encryption_key)?;
    let certificate = ServerCertificate {
        format: CERTIFICATE_FORMAT.to_owned(),
        license_id: license.license_id.clone(),
        server: request.server.clone(),
        activated_at: now,
    };
    let activated = ActivatedLicense {
        format: ACTIVATED_FORMAT.to_owned(),
        license,
        server: request.server.clone(),
        activated_at: now,
        certificate: seal(DocumentKind::ServerCertificate, &certificate, vendor)?,
    };
    seal(DocumentKind::ActivatedLicense, &activated, vendor)
}

/// Verifies an activated license file, and that the certificate inside it is the vendor's for
/// the same license, server and activation.
pub fn verify_activated(text: &str, vendor: &VerifyingKey) -> CryptoResult<ActivatedLicense> {
    let format = |text: &str| -> Option<String> {
        let (_, value) = read_unverified(text).ok()?;
        value.get("format")?.as_str().map(str::to_owned)
    };
    if DocumentKind::detect(text) == Some(DocumentKind::ActivatedLicense)
        && format(text).is_some_and(|f| f != ACTIVATED_FORMAT)
    {
        return Err(CryptoError::Malformed(format!(
            "unsupported activated license format `{}` (this version reads `{ACTIVATED_FORMAT}`): \
             have the license activated again with a current `tally vendor activate`",
            format(text).unwrap_or_default()
        )));
    }
    let activated: ActivatedLicense = open(text, DocumentKind::ActivatedLicense, vendor)?;
    let certificate = verify_certificate(&activated.certificate, vendor)?;
    if certificate.license_id != activated.license.license_id
        || certificate.server != activated.server
        || certificate.activated_at != activated.activated_at
    {
        return Err(CryptoError::Malformed(
            "the server certificate inside the activated license belongs to another activation"
                .into(),
        ));
    }
    Ok(activated)
}

/// Verifies a server certificate.
pub fn verify_certificate(text: &str, vendor: &VerifyingKey) -> CryptoResult<ServerCertificate> {
    let certificate: ServerCertificate = open(text, DocumentKind::ServerCertificate, vendor)?;
    if certificate.format != CERTIFICATE_FORMAT {
        return Err(CryptoError::Malformed(format!(
            "unsupported server certificate format `{}`",
            certificate.format
        )));
    }
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::license::{
        ActiveWindow, LicenseItem, LicenseType, Organization, ServerPublicIdentity,
    };

    fn sample() -> License {
        License {
            format: LICENSE_FORMAT.into(),
            license_id: "L-1".into(),
            organization: Organization {
                id: "1001".into(),
                name: "Acme".into(),
            },
            alias: "Acme 2026".into(),
            issued_at: 1_700_000_000,
            items: vec![LicenseItem {
                id: "L-1-1".into(),
                product: "scanner".into(),
                versions: None,
                modules: vec!["qr".into()],
                license_type: LicenseType::PerDevice,
                quantity: 5,
                start: 1_700_000_000,
                end: 1_800_000_000,
                grace_percent: 10,
                active_window: ActiveWindow::Days30,
                metric: None,
                max_offline_days: None,
                grace_days: None,
            }],
        }
    }

    #[test]
    fn issued_license_verifies() {
        let k = SigningKey::generate().unwrap();
        let text = issue_license(&sample(), &k).unwrap();
        assert_eq!(verify_license(&text, &k.verifying_key()).unwrap(), sample());
    }

    #[test]
    fn every_byte_matters() {
        let k = SigningKey::generate().unwrap();
        let text = issue_license(&sample(), &k).unwrap();
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut t = bytes.to_vec();
            t[i] ^= 0x01;
            if let Ok(s) = String::from_utf8(t) {
                assert!(
                    verify_license(&s, &k.verifying_key()).is_err(),
                    "byte {i} flip accepted"
                );
            }
        }
        // Appended or removed bytes too.
        assert!(verify_license(&format!("{text}\n"), &k.verifying_key()).is_err());
        assert!(verify_license(&text[..text.len() - 1], &k.verifying_key()).is_err());
    }

    #[test]
    fn another_vendor_key_is_refused() {
        let k = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let text = issue_license(&sample(), &k).unwrap();
        assert_eq!(
            verify_license(&text, &other.verifying_key()),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn an_activation_carries_a_certificate_without_the_license() {
        let k = SigningKey::generate().unwrap();
        let server = ServerPublicIdentity {
            uuid: "u".into(),
            signing_key: SigningKey::generate().unwrap().verifying_key().to_base64(),
            encryption_key: crate::EncryptionKeyPair::generate()
                .unwrap()
                .public()
                .to_base64(),
        };
        let request = ActivationRequest {
            format: tally_proto::license::ACTIVATION_REQUEST_FORMAT.into(),
            server: server.clone(),
            labels: vec![],
        };
        let issued = issue_license(&sample(), &k).unwrap();
        let text = activate_license(&issued, &request, &k, 5).unwrap();
        let activated = verify_activated(&text, &k.verifying_key()).unwrap();
        let certificate = verify_certificate(&activated.certificate, &k.verifying_key()).unwrap();
        assert_eq!(certificate.license_id, "L-1");
        assert_eq!(certificate.server, server);
        assert!(!activated.certificate.contains("Acme"));
        assert!(!activated.certificate.contains("scanner"));
        // A certificate of another activation cannot be slipped into a license.
        let other = activate_license(&issued, &request, &k, 6).unwrap();
        let other_cert = verify_activated(&other, &k.verifying_key())
            .unwrap()
            .certificate;
        let forged = ActivatedLicense {
            certificate: other_cert,
            ..activated
        };
        let forged = seal(DocumentKind::ActivatedLicense, &forged, &k).unwrap();
        assert!(verify_activated(&forged, &k.verifying_key()).is_err());
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let k = SigningKey::generate().unwrap();
        let text = issue_license(&sample(), &k).unwrap();
        assert!(matches!(
            verify_activated(&text, &k.verifying_key()),
            Err(CryptoError::WrongKind { .. })
        ));
    }
}
