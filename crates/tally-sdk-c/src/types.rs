//! The values that cross the boundary by value: status codes, device-id modes and the two result
//! structures the caller provides.

/// The status of a call that succeeded. Any other value is a stable error code of
/// `docs/error-codes.md` (`tally_error_name` gives its name).
pub const TALLY_OK: i32 = 0;

/// Device id mode: a random UUID kept in the state directory (the default; no personal data, a
/// new identity when the directory is lost).
pub const TALLY_DEVICE_ID_RANDOM: u32 = 0;

/// Device id mode: a UUID derived from a hash of the machine id and the vendor key (survives
/// reinstalls; nothing linkable across vendors leaves the device).
pub const TALLY_DEVICE_ID_HARDWARE: u32 = 1;

/// What `tally_authorize` and `tally_status` report. Times are Unix seconds (UTC).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallyStatus {
    /// Whether the grant held on the device lets the product run now: it verifies, is within its
    /// validity and the clock was not turned back.
    pub authorized: bool,
    /// Whether the last authorization on this handle used the grant held on the device because
    /// no server answered (warning `1001 cached_grant_used`).
    pub cached: bool,
    /// When not authorized: why, as a stable code (e.g. `1003 grant_expired`, `1006 no_grant`);
    /// 0 when authorized.
    pub reason: i32,
    /// Until when the held grant may be used, with or without a server; 0 without a grant.
    pub expires_at: i64,
    /// The end of the concurrent seat, for licenses counted in seats; else 0.
    pub seat_until: i64,
    /// While the license has ended and works in its grace (warning `1009 license_in_grace`):
    /// when the grace ends; else 0.
    pub grace_until: i64,
    /// Usage reports waiting for a server, the current slice's counters counting as one.
    pub pending_reports: u64,
}

/// What `tally_flush` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TallyFlushResult {
    /// Reports sent and answered.
    pub sent: u64,
    /// Reports the server holds now (counted now or before); they were removed from the device.
    pub acknowledged: u64,
    /// Reports still waiting for a server.
    pub pending: u64,
    /// Reports the server refused for good (malformed); they were dropped.
    pub refused: u64,
    /// Reports dropped unsent because their slice ended more than 30 days ago.
    pub expired: u64,
    /// Whether the server said the per-usage quota of this device's license is used up (the
    /// grant was forgotten: authorize again once it has been renewed).
    pub usage_exhausted: bool,
}
