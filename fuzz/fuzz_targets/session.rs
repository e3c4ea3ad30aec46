//! Report-session messages. Mode 0: a body as `POST /api/v2/session/report` receives it
//! (`SessionEnvelope` JSON, ticket id, ticket, message). Mode 1: the input as the plaintext of a
//! well-sealed report in a ticket this server issued, opened and decoded as the server does,
//! with the core's report rules on every report. Mode 2: the input as a run of sequence numbers
//! fed to one replay window, which must never accept a number twice.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tally_core::replay_window::{self, Window};
use tally_crypto::session::{Direction, SessionKey, TicketContents, TicketKey};
use tally_fuzz::{NOW, TICKETS, mode};
use tally_proto::wire::{ReportRequest, SessionEnvelope};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = mode(data) else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(envelope) = serde_json::from_slice::<SessionEnvelope>(rest) {
                open_like_the_server(&envelope);
            }
        }
        1 => sealed_report(rest),
        _ => replay(rest),
    }
});

/// What the server does with a session envelope before it reads the report inside.
fn open_like_the_server(envelope: &SessionEnvelope) {
    if TicketKey::ticket_id(&envelope.ticket).is_err() {
        return;
    }
    if let Ok(ticket) = TICKETS.open(&envelope.ticket) {
        let _ = ticket.key.open(
            Direction::ToServer,
            envelope.seq,
            &envelope.ticket,
            &envelope.ct,
        );
    }
}

/// A report sealed by a client of a real session: it must open, and its reports go through the
/// rules of `service::report`.
fn sealed_report(plaintext: &[u8]) {
    let key = SessionKey::from_bytes([3; 32]);
    let contents = TicketContents {
        device_uuid: "dev-1".into(),
        handshake_code: "acme-default".into(),
        expires_at: NOW + 3600,
    };
    let ticket = TICKETS.issue(&key, &contents).expect("a ticket seals");
    let seq = u64::from(plaintext.first().copied().unwrap_or(1)).max(1);
    let ct = key
        .seal(Direction::ToServer, seq, &ticket, plaintext)
        .expect("a message seals");
    let body = serde_json::to_vec(&SessionEnvelope {
        v: tally_proto::wire::PROTOCOL_VERSION,
        ticket,
        seq,
        ct,
    })
    .expect("an envelope serializes");
    let envelope: SessionEnvelope = serde_json::from_slice(&body).expect("it reads back");
    let id = TicketKey::ticket_id(&envelope.ticket).expect("an issued ticket has an id");
    let opened = TICKETS
        .open(&envelope.ticket)
        .expect("an issued ticket opens");
    assert_eq!(opened.id, id);
    assert_eq!(opened.contents, contents);
    let plain = opened
        .key
        .open(Direction::ToServer, seq, &envelope.ticket, &envelope.ct)
        .expect("the message opens");
    assert_eq!(plain, plaintext);
    let Ok(req) = serde_json::from_slice::<ReportRequest>(&plain) else {
        return;
    };
    let _ = req.sent_at.saturating_sub(NOW).saturating_abs();
    let item = tally_proto::license::LicenseItem {
        metric: None,
        ..serde_json::from_str(
            r#"{"id":"i","product":"p","license_type":"per-usage","quantity":10,
                "start":0,"end":2000000000,"grace_percent":5}"#,
        )
        .expect("a fixed item")
    };
    for report in &req.reports {
        let slice = tally_core::reporting::counted_slice(report.slice, NOW);
        assert!(slice <= tally_proto::slice::slice_of(NOW));
        let _ = tally_proto::slice::slice_start(slice);
        let _ = tally_proto::slice::slice_end(slice);
        let _ = tally_proto::slice::day_of_slice(slice);
    }
    let used = tally_core::reporting::charged_usage(&item, req.reports.iter().map(|r| &r.counts));
    let _ = tally_core::reporting::usage_exhausted(&item, used);
}

/// Sequence numbers, 8 bytes each, through one window: each accepted once at most.
fn replay(bytes: &[u8]) {
    let mut window = Window::default();
    let mut accepted = HashSet::new();
    for chunk in bytes.chunks_exact(8) {
        let seq = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        if let Some(next) = replay_window::accept(window, seq) {
            assert!(accepted.insert(seq), "sequence number {seq} accepted twice");
            assert!(next.highest >= window.highest);
            window = next;
        }
    }
}
