//! What a configured handle does: authorize, record usage, send it, tell the status, and keep
//! all of it going in a background thread. Each is the Rust SDK's call of the same name.

use std::ffi::c_char;
use std::time::Duration;

use tally_sdk::{Authorization, Client, ErrorCode, SdkResult};

use crate::boundary::{call, text, write_out};
use crate::handle::TallyClient;
use crate::types::{TallyFlushResult, TallyStatus};

/// Starts the client: checks the configuration and opens the state directory (device id, held
/// grant). No server is contacted. Optional: the calls below start the client themselves; calling
/// it first shows a configuration mistake at start-up. The configuration is fixed afterwards.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_start(client: *mut TallyClient) -> i32 {
    call(client, |c| c.client().map(|_| ()))
}

/// Asks the servers in order for a grant and keeps it on the device. When no server answers,
/// the grant held on the device is used while it is valid (`cached` is then true). A refusal by
/// a server is returned as its stable code. On success the status is written to `*out` unless
/// `out` is NULL.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `out` is NULL or valid for writing a `TallyStatus`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_authorize(client: *mut TallyClient, out: *mut TallyStatus) -> i32 {
    call(client, |c| {
        let sdk = c.client()?;
        let auth = sdk.authorize()?;
        c.set_cached(auth.cached);
        if out.is_null() {
            return Ok(());
        }
        let status = authorized(c, sdk, &auth)?;
        // SAFETY: the caller's promise on `out`.
        unsafe { write_out(out, status, "out") }
    })
}

/// Adds `count` uses of `feature` (1 to 128 printable ASCII characters without spaces, e.g.
/// `scan` or `scan.symbology.qr`) to the current 3-minute slice, on disk before it returns.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `feature` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_record_usage(
    client: *mut TallyClient,
    feature: *const c_char,
    count: u64,
) -> i32 {
    call(client, |c| {
        // SAFETY: the caller's promise on `feature`.
        let feature = unsafe { text(feature, "feature") }?;
        c.client()?.record_usage(feature, count)
    })
}

/// Sends the recorded usage now (in the report session of the last authorization, authorizing
/// first when there is none). Reports a server did not acknowledge stay on the device for the
/// next call. `out` may be NULL; otherwise what was sent is written there on success.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `out` is NULL or valid for writing a
/// `TallyFlushResult`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_flush(client: *mut TallyClient, out: *mut TallyFlushResult) -> i32 {
    call(client, |c| {
        let sent = c.client()?.flush()?;
        if out.is_null() {
            return Ok(());
        }
        let result = TallyFlushResult {
            sent: count(sent.sent),
            acknowledged: count(sent.acknowledged),
            pending: count(sent.pending),
            refused: count(sent.refused),
            expired: count(sent.expired),
            usage_exhausted: sent.usage_exhausted,
        };
        // SAFETY: the caller's promise on `out`.
        unsafe { write_out(out, result, "out") }
    })
}

/// Whether the product may run now, from the device alone (no network): the held grant is
/// verified and judged against the clock; `authorized` says the verdict and `reason` why not.
/// Only a failure to read the local state is an error.
///
/// # Safety
/// `client` is a live handle from `tally_new`; `out` is valid for writing a `TallyStatus` (NULL is
/// refused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_status(client: *mut TallyClient, out: *mut TallyStatus) -> i32 {
    call(client, |c| {
        let sdk = c.client()?;
        let status = match sdk.check() {
            Ok(auth) => authorized(c, sdk, &auth)?,
            Err(e) if e.code == ErrorCode::LocalStorageFailed => return Err(e),
            Err(e) => {
                let held = sdk.status()?;
                let grant = held.grant.as_ref();
                TallyStatus {
                    authorized: false,
                    cached: c.cached(),
                    reason: i32::from(e.code.code()),
                    expires_at: grant.map_or(0, |g| g.valid_until),
                    seat_until: grant.and_then(|g| g.seat_until).unwrap_or(0),
                    grace_until: 0,
                    pending_reports: count(held.pending_reports),
                }
            }
        };
        // SAFETY: the caller's promise on `out`.
        unsafe { write_out(out, status, "out") }
    })
}

/// Starts a background thread that renews the grant before it lapses and sends usage at once and
/// then every `report_every_seconds` (0: every 3 minutes), until `tally_free`. Once per handle.
///
/// # Safety
/// `client` is a live handle from `tally_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tally_start_background(
    client: *mut TallyClient,
    report_every_seconds: u32,
) -> i32 {
    call(client, |c| {
        let sdk = c.client()?;
        let every = match report_every_seconds {
            0 => tally_sdk::DEFAULT_REPORT_INTERVAL,
            seconds => Duration::from_secs(u64::from(seconds)),
        };
        c.keep_background(|| sdk.spawn_background(every))
    })
}

/// The status of an authorized device.
fn authorized(c: &TallyClient, sdk: &Client, auth: &Authorization) -> SdkResult<TallyStatus> {
    Ok(TallyStatus {
        authorized: true,
        cached: c.cached(),
        reason: 0,
        expires_at: auth.grant.valid_until,
        seat_until: auth.grant.seat_until.unwrap_or(0),
        grace_until: auth.grace_until.unwrap_or(0),
        pending_reports: count(sdk.status()?.pending_reports),
    })
}

/// A count for C (a `usize` always fits in 64 bits on the platforms Rust supports).
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
