//! Types that cross a process boundary: license documents written by the vendor, the client/server
//! wire protocol, the admin API bodies and the one table of stable error codes.
//!
//! Everything here is plain data (serde); signing and encryption live in `tally-crypto`, rules in
//! `tally-core`.

pub mod admin;
pub mod error;
pub mod license;
pub mod slice;
pub mod time_text;
pub mod wire;

pub use error::{ErrorBody, ErrorCode};

/// Seconds since the Unix epoch, UTC. Used for every instant on the wire and in documents so
/// that no time zone or calendar parsing is involved in signed data.
pub type UnixSeconds = i64;

/// The TCP port a server listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 48080;

/// Days a device may run on a grant without contacting the server, for license items that do not
/// state their own limit (`LicenseItem::max_offline_days`).
pub const DEFAULT_OFFLINE_DAYS: u32 = 7;

/// Most offline days anyone may state or ask for (ten years).
pub const MAX_OFFLINE_DAYS: u32 = 3650;

/// Days an item keeps authorizing after its end, for items that do not state their own
/// (`LicenseItem::grace_days`).
pub const DEFAULT_GRACE_DAYS: u32 = 7;
