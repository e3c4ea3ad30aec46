//! Bodies and queries of the admin API (`/api/admin/…`) as its handlers decode them
//! (`api::body::json`, which is `serde_json::from_slice` with a stable error), and the rules the
//! server applies to what they carry: validation-field wildcards, page origins against a code's
//! domains, the usage query's dates. A decoded body must encode and decode to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tally_fuzz::mode;
use tally_proto::admin::{
    CreateHandshake, EmailSettings, UpdateHandshake, UsageQuery, ValidationRules, WebhookSettings,
};
use tally_proto::wire::ValidationField;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = mode(data) else {
        return;
    };
    match mode % 6 {
        0 => {
            if let Some(create) = round_trip::<CreateHandshake>(rest) {
                let _ = tally_core::resolve::resolve(&create.organization, "");
            }
        }
        1 => {
            if let Some(update) = round_trip::<UpdateHandshake>(rest)
                && let Some(rules) = &update.validation
            {
                rules_against_themselves(rules);
            }
        }
        2 => {
            let _ = round_trip::<EmailSettings>(rest);
        }
        3 => {
            let _ = round_trip::<WebhookSettings>(rest);
        }
        4 => {
            if let Some(query) = round_trip::<UsageQuery>(rest) {
                for day in [&query.from, &query.to].into_iter().flatten() {
                    if let Some(n) = tally_proto::time_text::parse_day(day) {
                        assert_eq!(&tally_proto::time_text::day_number(n), day);
                    }
                }
            }
        }
        _ => {
            if let Some(rules) = round_trip::<ValidationRules>(rest) {
                rules_against_themselves(&rules);
            }
        }
    }
});

/// Decodes `bytes` as the handler does; what decodes must survive a round trip.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Option<T> {
    let value: T = serde_json::from_slice(bytes).ok()?;
    let json = serde_json::to_vec(&value).expect("a decoded body encodes");
    let back: T = serde_json::from_slice(&json).expect("an encoded body decodes");
    assert_eq!(back, value);
    Some(value)
}

/// Each pattern against each other pattern taken as a value, and as a page origin.
fn rules_against_themselves(rules: &ValidationRules) {
    let all: Vec<&String> = rules
        .domains
        .iter()
        .chain(&rules.app_ids)
        .chain(&rules.process_names)
        .take(16)
        .collect();
    for value in &all {
        let field = ValidationField {
            domain: Some((*value).clone()),
            app_id: Some((*value).clone()),
            process: Some((*value).clone()),
        };
        let _ = tally_core::validation::check(rules, &field);
        for pattern in &all {
            let _ = tally_core::validation::wildcard_match(pattern, value);
        }
        let _ = tally_core::origin::code_allows(&rules.domains, value);
        let _ = tally_core::origin::host_of(value);
    }
}
