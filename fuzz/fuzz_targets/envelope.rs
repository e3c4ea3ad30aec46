//! The sealed client requests and their replies. Mode 0: a request body as `POST
//! /api/v2/authorize` receives it (`Envelope` JSON, then HPKE open). Mode 1: the input as the
//! plaintext of a well-sealed authorization, opened and decoded as the server does, with the
//! checks the core applies to its fields (validation fields, origin, offline days). Mode 2: a
//! reply body as the SDK receives it (`SealedResponse` JSON, opened with the request's key, then
//! the `Reply` inside).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tally_crypto::envelope::{open_request, seal_request};
use tally_fuzz::{SERVER, mode};
use tally_proto::admin::ValidationRules;
use tally_proto::license::{ActiveWindow, LicenseItem, LicenseType, VersionRange};
use tally_proto::wire::{AuthorizeRequest, AuthorizeResponse, Envelope, Reply, SealedResponse};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = mode(data) else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(envelope) = serde_json::from_slice::<Envelope>(rest) {
                let _ = open_request(&SERVER, "authorize", &envelope);
            }
        }
        1 => {
            let (envelope, reply_key) = seal_request(&SERVER.public(), "authorize", rest)
                .expect("sealing to a valid key works");
            let body = serde_json::to_vec(&envelope).expect("an envelope serializes");
            let envelope: Envelope = serde_json::from_slice(&body).expect("it reads back");
            let opened = open_request(&SERVER, "authorize", &envelope).expect("it opens");
            assert_eq!(opened.plaintext, rest);
            if let Ok(req) = serde_json::from_slice::<AuthorizeRequest>(&opened.plaintext) {
                authorize_fields(&req);
            }
            let sealed = opened.reply_key.seal(rest).expect("a reply seals");
            assert_eq!(reply_key.open(&sealed).expect("the client opens it"), rest);
        }
        _ => {
            let (_, reply_key) =
                seal_request(&SERVER.public(), "authorize", b"{}").expect("sealing works");
            if let Ok(sealed) = serde_json::from_slice::<SealedResponse>(rest)
                && let Ok(plain) = reply_key.open(&sealed)
            {
                let _ = serde_json::from_slice::<Reply<AuthorizeResponse>>(&plain);
            }
        }
    }
});

/// The core's checks on the fields of an opened authorization.
fn authorize_fields(req: &AuthorizeRequest) {
    let rules = ValidationRules {
        domains: vec!["*.example.com".into(), "shop?.example.org".into()],
        app_ids: vec!["com.example.*".into()],
        process_names: vec!["*scanner*".into()],
    };
    let _ = tally_core::validation::check(&rules, &req.validation);
    let _ = tally_core::resolve::resolve(&req.organization, &req.handshake_code);
    if let Some(domain) = &req.validation.domain {
        let _ = tally_core::origin::host_of(domain);
        let _ = tally_core::origin::speaks_for(domain, Some(domain), true);
    }
    let item = LicenseItem {
        id: "L-1-1".into(),
        product: "scanner".into(),
        versions: Some(VersionRange {
            min_major: 1,
            max_major: 3,
        }),
        modules: vec!["qr".into(), "pdf417".into()],
        license_type: LicenseType::PerDevice,
        quantity: 5,
        start: 0,
        end: 2_000_000_000,
        grace_percent: 10,
        active_window: ActiveWindow::Days30,
        metric: None,
        max_offline_days: Some(30),
        grace_days: None,
    };
    let days = tally_core::validity::offline_days(&item, Some(30), req.buffer_days);
    let _ = tally_core::matching::check(
        &item,
        &req.product,
        req.version,
        &req.modules,
        tally_fuzz::NOW,
    );
    let _ = tally_core::validity::local_validity(&item, i64::MAX, tally_fuzz::NOW, days, None);
}
