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
    License, MAX_ACTIVATED_SERVERS, ServerCertificate, ServerPublicIdentity,
};

use crate::{CryptoError, CryptoResult, SigningKey, VerifyingKey, b64_decode, b64_encode};

/// Domain separation: a signature over a document can never be mistaken for another message.
pub const SIGNING_CONTEXT: &[u8] = b"tally-document/1\n";
const SIGNATURE_LINE: &str = "-----BEGIN TALLY SIGNATURE-----\n";

/// The kinds of signed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A license file as issued by the vendor.
    License,
    /// A license file the vendor bound to a named set of server instances.
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
    // The BEGIN line's own newline can start the signature marker: no payload line at all.
    let payload = text
        .get(kind.begin_line().len()..sig_at)
        .ok_or_else(|| CryptoError::Malformed("the payload is missing".into()))?;
    let rest = &text[signed_end..];
    let expected_tail_len = 88 + 1 + kind.end_line().len();
    if rest.len() != expected_tail_len || !rest.ends_with(&kind.end_line()) {
        return Err(CryptoError::Malformed(
            "the signature section must hold one base64 signature line and the END line, nothing else"
                .into(),
        ));
    }
    // Not `&rest[..88]`: a multi-byte character across byte 88 is malformed, not a panic.
    let sig_text = rest
        .get(..88)
        .filter(|_| rest.as_bytes()[88] == b'\n')
        .ok_or_else(|| CryptoError::Malformed("the signature line is malformed".into()))?;
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

/// Binds a verified license file to the one server that sent `request`: see
/// [`activate_for_servers`].
pub fn activate_license(
    license_text: &str,
    request: &ActivationRequest,
    vendor: &SigningKey,
    now: UnixSeconds,
) -> CryptoResult<String> {
    activate_for_servers(
        license_text,
        std::slice::from_ref(&request.server),
        vendor,
        now,
    )
}

/// Binds a verified license file to the named set of server instances `servers` (1 to
/// [`MAX_ACTIVATED_SERVERS`], distinct UUIDs and keys): the activated license (for the servers
/// and the devices they authorize) with, inside it, one server certificate per server in the same
/// order (each instance shows its own to anyone).
pub fn activate_for_servers(
    license_text: &str,
    servers: &[ServerPublicIdentity],
    vendor: &SigningKey,
    now: UnixSeconds,
) -> CryptoResult<String> {
    let license = verify_license(license_text, &vendor.verifying_key())?;
    check_servers(servers)?;
    // Refuse a server whose keys are not well-formed: it could never use them.
    for server in servers {
        VerifyingKey::from_base64(&server.signing_key)?;
        crate::keys::EncryptionPublicKey::from_base64(&server.encryption_key)?;
    }
    let certificates = servers
        .iter()
        .map(|server| {
            let certificate = ServerCertificate {
                format: CERTIFICATE_FORMAT.to_owned(),
                license_id: license.license_id.clone(),
                server: server.clone(),
                activated_at: now,
            };
            seal(DocumentKind::ServerCertificate, &certificate, vendor)
        })
        .collect::<CryptoResult<Vec<String>>>()?;
    let activated = ActivatedLicense {
        format: ACTIVATED_FORMAT.to_owned(),
        license,
        servers: servers.to_vec(),
        activated_at: now,
        certificates,
    };
    seal(DocumentKind::ActivatedLicense, &activated, vendor)
}

/// The set of servers of one activation: 1 to [`MAX_ACTIVATED_SERVERS`], no UUID, signing key
/// or encryption key twice (each instance has its own identity).
pub fn check_servers(servers: &[ServerPublicIdentity]) -> CryptoResult<()> {
    if servers.is_empty() {
        return Err(CryptoError::Malformed(
            "an activation must name at least one server".into(),
        ));
    }
    if servers.len() > MAX_ACTIVATED_SERVERS {
        return Err(CryptoError::Malformed(format!(
            "an activation names at most {MAX_ACTIVATED_SERVERS} servers, not {}",
            servers.len()
        )));
    }
    for (i, server) in servers.iter().enumerate() {
        for earlier in &servers[..i] {
            let same = if earlier.uuid == server.uuid {
                "UUID"
            } else if earlier.signing_key == server.signing_key {
                "signing key"
            } else if earlier.encryption_key == server.encryption_key {
                "encryption key"
            } else {
                continue;
            };
            return Err(CryptoError::Malformed(format!(
                "servers {} and {} have the same {same}: each server instance must have its own \
                 identity",
                earlier.uuid, server.uuid
            )));
        }
    }
    Ok(())
}

/// Verifies an activated license file, its set of servers, and that each certificate inside it
/// is the vendor's for the same license, activation and server (in the same order).
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
    check_servers(&activated.servers)?;
    if activated.certificates.len() != activated.servers.len() {
        return Err(CryptoError::Malformed(format!(
            "the activated license names {} servers but holds {} server certificates",
            activated.servers.len(),
            activated.certificates.len()
        )));
    }
    for (server, text) in activated.servers.iter().zip(&activated.certificates) {
        let certificate = verify_certificate(text, vendor)?;
        if certificate.license_id != activated.license.license_id
            || &certificate.server != server
            || certificate.activated_at != activated.activated_at
        {
            return Err(CryptoError::Malformed(format!(
                "the server certificate of server {} inside the activated license belongs to \
                 another activation or server",
                server.uuid
            )));
        }
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
    use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType, Organization};

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

    fn server(uuid: &str) -> ServerPublicIdentity {
        ServerPublicIdentity {
            uuid: uuid.into(),
            signing_key: SigningKey::generate().unwrap().verifying_key().to_base64(),
            encryption_key: crate::EncryptionKeyPair::generate()
                .unwrap()
                .public()
                .to_base64(),
        }
    }

    fn request(server: &ServerPublicIdentity) -> ActivationRequest {
        ActivationRequest {
            format: tally_proto::license::ACTIVATION_REQUEST_FORMAT.into(),
            server: server.clone(),
            labels: vec![],
        }
    }

    fn malformed(result: CryptoResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(CryptoError::Malformed(m)) => m,
            other => panic!("expected a malformed document, got {other:?}"),
        }
    }

    #[test]
    fn an_activation_carries_a_certificate_without_the_license() {
        let k = SigningKey::generate().unwrap();
        let server = server("u");
        let issued = issue_license(&sample(), &k).unwrap();
        let text = activate_license(&issued, &request(&server), &k, 5).unwrap();
        let activated = verify_activated(&text, &k.verifying_key()).unwrap();
        assert_eq!(activated.format, ACTIVATED_FORMAT);
        assert_eq!(activated.servers, std::slice::from_ref(&server));
        assert_eq!(activated.certificates.len(), 1);
        let certificate =
            verify_certificate(&activated.certificates[0], &k.verifying_key()).unwrap();
        assert_eq!(certificate.license_id, "L-1");
        assert_eq!(certificate.server, server);
        assert!(!activated.certificates[0].contains("Acme"));
        assert!(!activated.certificates[0].contains("scanner"));
        // A certificate of another activation cannot be slipped into a license.
        let other = activate_license(&issued, &request(&server), &k, 6).unwrap();
        let other_cert = verify_activated(&other, &k.verifying_key())
            .unwrap()
            .certificates;
        let forged = ActivatedLicense {
            certificates: other_cert,
            ..activated
        };
        let forged = seal(DocumentKind::ActivatedLicense, &forged, &k).unwrap();
        assert!(verify_activated(&forged, &k.verifying_key()).is_err());
    }

    #[test]
    fn one_activation_serves_several_servers_each_with_its_own_certificate() {
        let k = SigningKey::generate().unwrap();
        let (a, b) = (server("a"), server("b"));
        let issued = issue_license(&sample(), &k).unwrap();
        let text = activate_for_servers(&issued, &[a.clone(), b.clone()], &k, 5).unwrap();
        let activated = verify_activated(&text, &k.verifying_key()).unwrap();
        assert_eq!(activated.servers, [a.clone(), b.clone()]);
        for (server, text) in [
            (&a, &activated.certificates[0]),
            (&b, &activated.certificates[1]),
        ] {
            let certificate = verify_certificate(text, &k.verifying_key()).unwrap();
            assert_eq!(&certificate.server, server);
            assert_eq!(certificate.license_id, "L-1");
            assert_eq!(certificate.activated_at, 5);
            assert_eq!(activated.certificate_of(server), Some(text.as_str()));
            assert!(activated.names(server));
        }
        assert!(!activated.names(&server("c")));
        let mut other_keys = a.clone();
        other_keys.signing_key = b.signing_key.clone();
        assert!(
            !activated.names(&other_keys),
            "the UUID alone is not enough"
        );
        assert_eq!(activated.server_uuids(), "a, b");
    }

    #[test]
    fn certificates_swapped_between_servers_or_missing_are_refused() {
        let k = SigningKey::generate().unwrap();
        let (a, b) = (server("a"), server("b"));
        let issued = issue_license(&sample(), &k).unwrap();
        let text = activate_for_servers(&issued, &[a, b], &k, 5).unwrap();
        let activated = verify_activated(&text, &k.verifying_key()).unwrap();
        let resealed = |a: &ActivatedLicense| {
            verify_activated(
                &seal(DocumentKind::ActivatedLicense, a, &k).unwrap(),
                &k.verifying_key(),
            )
        };
        let mut swapped = activated.clone();
        swapped.certificates.swap(0, 1);
        assert_eq!(
            malformed(resealed(&swapped)),
            "the server certificate of server a inside the activated license belongs to another \
             activation or server"
        );
        let mut missing = activated.clone();
        missing.certificates.pop();
        assert_eq!(
            malformed(resealed(&missing)),
            "the activated license names 2 servers but holds 1 server certificates"
        );
        // The same certificate for both: the second server's does not name it.
        let mut twice = activated.clone();
        twice.certificates[1] = twice.certificates[0].clone();
        assert!(malformed(resealed(&twice)).contains("of server b"));
        // Nor may a server be dropped from the list while its certificate stays.
        let mut dropped = activated;
        dropped.servers.remove(0);
        dropped.certificates.remove(1);
        assert!(malformed(resealed(&dropped)).contains("of server b"));
    }

    #[test]
    fn duplicate_or_too_many_servers_are_refused() {
        let k = SigningKey::generate().unwrap();
        let issued = issue_license(&sample(), &k).unwrap();
        let a = server("a");
        let mut same_uuid = server("b");
        same_uuid.uuid = "a".into();
        let mut same_signing = server("b");
        same_signing.signing_key = a.signing_key.clone();
        let mut same_encryption = server("b");
        same_encryption.encryption_key = a.encryption_key.clone();
        for (twin, what) in [
            (&same_uuid, "UUID"),
            (&same_signing, "signing key"),
            (&same_encryption, "encryption key"),
        ] {
            assert_eq!(
                malformed(activate_for_servers(
                    &issued,
                    &[a.clone(), twin.clone()],
                    &k,
                    5
                )),
                format!(
                    "servers a and {} have the same {what}: each server instance must have its \
                     own identity",
                    twin.uuid
                )
            );
        }
        assert_eq!(
            malformed(activate_for_servers(&issued, &[], &k, 5)),
            "an activation must name at least one server"
        );
        let many: Vec<ServerPublicIdentity> = (0..=MAX_ACTIVATED_SERVERS)
            .map(|i| server(&i.to_string()))
            .collect();
        assert_eq!(
            malformed(activate_for_servers(&issued, &many, &k, 5)),
            "an activation names at most 16 servers, not 17"
        );
        assert!(activate_for_servers(&issued, &many[..MAX_ACTIVATED_SERVERS], &k, 5).is_ok());

        // A file signed by the vendor with a server twice is refused when read, too.
        let text = activate_license(&issued, &request(&a), &k, 5).unwrap();
        let mut doubled = verify_activated(&text, &k.verifying_key()).unwrap();
        doubled.servers.push(a.clone());
        doubled.certificates.push(doubled.certificates[0].clone());
        let doubled = seal(DocumentKind::ActivatedLicense, &doubled, &k).unwrap();
        assert!(malformed(verify_activated(&doubled, &k.verifying_key())).contains("same UUID"));
    }

    #[test]
    fn a_file_of_an_earlier_format_asks_for_a_new_activation() {
        let k = SigningKey::generate().unwrap();
        let a = server("a");
        let old = serde_json::json!({
            "format": "tally-activated-license/2",
            "license": sample(),
            "server": a,
            "activated_at": 5,
            "certificate": "x",
        });
        let old = seal(DocumentKind::ActivatedLicense, &old, &k).unwrap();
        assert_eq!(
            malformed(verify_activated(&old, &k.verifying_key())),
            "unsupported activated license format `tally-activated-license/2` (this version \
             reads `tally-activated-license/3`): have the license activated again with a current \
             `tally vendor activate`"
        );
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

    /// Found by fuzzing (`fuzz/`, target `license_file`): armor that used to panic while being
    /// split is refused as malformed, by every reader of license files.
    #[test]
    fn broken_armor_is_malformed_instead_of_a_panic() {
        let k = SigningKey::generate().unwrap();
        let vendor = k.verifying_key();
        // The BEGIN line's newline doubles as the start of the signature marker.
        let no_payload = format!(
            "-----BEGIN TALLY LICENSE-----\n-----BEGIN TALLY SIGNATURE-----\n{}\n\
             -----END TALLY LICENSE-----\n",
            "A".repeat(88)
        );
        assert!(malformed(verify_license(&no_payload, &vendor)).contains("payload is missing"));
        assert!(malformed(read_unverified(&no_payload)).contains("payload is missing"));
        // A two-byte character across byte 88 of the signature section.
        let text = issue_license(&sample(), &k).unwrap();
        let at = text.find(SIGNATURE_LINE).unwrap() + SIGNATURE_LINE.len();
        let mut split_char = text[..at].to_owned();
        split_char.push_str(&"A".repeat(87));
        split_char.push('é');
        split_char.push_str(&text[at + 89..]);
        assert_eq!(split_char.len(), text.len());
        assert!(malformed(verify_license(&split_char, &vendor)).contains("signature line"));
        assert!(malformed(read_unverified(&split_char)).contains("signature line"));
    }
}
