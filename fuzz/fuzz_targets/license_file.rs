//! License files, activated license files and server certificates as `tally vendor inspect`,
//! `tally admin import`, the server's import and the SDK's chain check read them. Mode 0 reads
//! the input as a whole file (armor, signature section, unverified payload). Mode 1 seals the
//! input as a JSON payload with the vendor key first, so that the payload parsing and the checks
//! behind a valid signature (server sets, nested certificates) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_crypto::document::{self, DocumentKind};
use tally_fuzz::{VENDOR, mode};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = mode(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let vendor = VENDOR.verifying_key();
    if mode % 2 == 0 {
        read_all_ways(text, &vendor);
        return;
    }
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    for kind in [
        DocumentKind::License,
        DocumentKind::ActivatedLicense,
        DocumentKind::ServerCertificate,
    ] {
        let sealed = document::seal(kind, &payload, &VENDOR).expect("a JSON value serializes");
        read_all_ways(&sealed, &vendor);
        let (found, _) = document::read_unverified(&sealed).expect("a sealed document reads");
        assert_eq!(found, kind);
    }
});

fn read_all_ways(text: &str, vendor: &tally_crypto::VerifyingKey) {
    let _ = DocumentKind::detect(text);
    let _ = document::read_unverified(text);
    let _ = document::verify_license(text, vendor);
    let _ = document::verify_certificate(text, vendor);
    if let Ok(activated) = document::verify_activated(text, vendor) {
        for server in &activated.servers {
            assert!(activated.names(server));
            assert!(activated.certificate_of(server).is_some());
        }
        let _ = activated.server_uuids();
    }
}
