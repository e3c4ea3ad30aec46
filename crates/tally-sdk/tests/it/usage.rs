//! Usage recording: per-slice reports with ids fixed once, kept on disk until acknowledged.

use std::collections::BTreeMap;

use tally_proto::slice::{SLICE_SECONDS, slice_of};
use tally_sdk::{ErrorCode, RETENTION_SECONDS};

use crate::fixtures::*;

/// The reports waiting on disk: (report id, slice, counts).
fn pending_on_disk(f: &Fixture) -> Vec<(String, i64, BTreeMap<String, u64>)> {
    let text = std::fs::read_to_string(f.state_dir().join("usage.json")).unwrap();
    let book: serde_json::Value = serde_json::from_str(&text).unwrap();
    book["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["report_id"].as_str().unwrap().to_owned(),
                r["slice"].as_i64().unwrap(),
                serde_json::from_value(r["counts"].clone()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn usage_is_split_per_slice_with_ids_that_survive_a_restart() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    client.record_usage("scan", 2).unwrap();
    f.clock.advance(SLICE_SECONDS - 1);
    client.record_usage("scan", 1).unwrap();
    client.record_usage("scan.symbology.qr", 1).unwrap();
    let status = client.status().unwrap();
    assert_eq!(status.open_slice, Some(slice_of(T0)));
    assert_eq!(status.open_slice_counts["scan"], 3);
    assert_eq!(status.pending_reports, 1);

    // The next slice closes the first one into a report.
    f.clock.advance(1);
    client.record_usage("page", 4).unwrap();
    let first = pending_on_disk(&f);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, slice_of(T0));
    assert_eq!(
        first[0].2,
        BTreeMap::from([("scan".into(), 3), ("scan.symbology.qr".into(), 1)])
    );

    // A failed flush closes the open slice too; ids do not change on retries or restarts.
    assert_eq!(
        client.flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    let after_flush = pending_on_disk(&f);
    assert_eq!(after_flush.len(), 2);
    assert_eq!(after_flush[0], first[0]);
    assert_eq!(after_flush[1].1, slice_of(T0) + 1);
    drop(client);
    let restarted = f.offline_client();
    assert_eq!(restarted.status().unwrap().pending_reports, 2);
    assert_eq!(
        restarted.flush().unwrap_err().code,
        ErrorCode::ServerUnreachable
    );
    assert_eq!(pending_on_disk(&f), after_flush);

    // More usage in the same slice after a flush makes another report for that slice.
    restarted.record_usage("page", 1).unwrap();
    restarted.flush().unwrap_err();
    let again = pending_on_disk(&f);
    assert_eq!(again.len(), 3);
    assert_eq!(again[2].1, slice_of(T0) + 1);
    assert_ne!(again[2].0, again[1].0);
    let ids: std::collections::HashSet<_> = again.iter().map(|r| r.0.clone()).collect();
    assert_eq!(ids.len(), 3);
    for (id, ..) in &again {
        let u = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(u.get_version_num(), 7, "report ids are UUID v7");
    }
}

#[test]
fn flush_against_an_unreachable_server_keeps_reports_pending() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    client.record_usage("scan", 5).unwrap();
    let e = client.flush().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerUnreachable);
    assert!(e.message.contains("1 usage reports kept"), "{e}");
    assert_eq!(client.status().unwrap().pending_reports, 1);
    assert_eq!(pending_on_disk(&f)[0].2["scan"], 5);
}

#[test]
fn reports_older_than_thirty_days_are_dropped() {
    let f = Fixture::new();
    let client = f.offline_client();
    f.authorize_directly(&client);
    client.record_usage("scan", 1).unwrap();
    f.clock.advance(SLICE_SECONDS);
    client.record_usage("scan", 2).unwrap();
    // The first slice ended at T0 + 180: exactly 30 days later it is still kept...
    f.clock.set(T0 + SLICE_SECONDS + RETENTION_SECONDS);
    client.flush().unwrap_err();
    assert_eq!(pending_on_disk(&f).len(), 2);
    // ...one second more and it is dropped, the younger one kept.
    f.clock.advance(1);
    client.flush().unwrap_err();
    let left = pending_on_disk(&f);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].2["scan"], 2);
    // With only expired reports, flush needs no server and says what it dropped.
    f.clock.advance(DAY);
    let outcome = client.flush().unwrap();
    assert_eq!(outcome.expired, 1);
    assert_eq!(outcome.sent, 0);
    assert_eq!(outcome.pending, 0);
}

#[test]
fn nothing_to_send_needs_no_server() {
    let f = Fixture::new();
    let outcome = f.offline_client().flush().unwrap();
    assert_eq!(outcome, tally_sdk::FlushOutcome::default());
}

#[test]
fn without_a_session_reports_wait_for_an_authorization() {
    let f = Fixture::new();
    let client = f.offline_client();
    client.record_usage("scan", 1).unwrap();
    // Reports travel only in a session, which only an authorization opens: the flush tries to
    // authorize, and no server answers.
    let e = client.flush().unwrap_err();
    assert_eq!(e.code, ErrorCode::ServerUnreachable);
    assert!(e.message.contains("1 usage reports kept"), "{e}");
    assert_eq!(client.status().unwrap().pending_reports, 1);
}

#[test]
fn bad_feature_names_are_refused_and_nothing_is_recorded() {
    let f = Fixture::new();
    let client = f.offline_client();
    for bad in ["", "two words", "naïve", &"x".repeat(129)] {
        let e = client.record_usage(bad, 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{bad:?}");
    }
    client.record_usage("scan", 0).unwrap();
    assert_eq!(client.status().unwrap().pending_reports, 0);
}

#[test]
fn concurrent_recording_loses_nothing() {
    let f = Fixture::new();
    let clients: Vec<_> = (0..4).map(|_| f.offline_client()).collect();
    std::thread::scope(|s| {
        for c in &clients {
            s.spawn(move || {
                for _ in 0..25 {
                    c.record_usage("scan", 1).unwrap();
                }
            });
        }
    });
    assert_eq!(clients[0].status().unwrap().open_slice_counts["scan"], 100);
}
