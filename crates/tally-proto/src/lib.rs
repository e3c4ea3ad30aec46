//! Types that cross a process boundary: license documents written by the vendor, the client/server
//! wire protocol, the admin API bodies and the one table of stable error codes.
//!
//! Everything here is plain data (serde); signing and encryption live in `tally-crypto`, rules in
//! `tally-core`.

pub mod admin;
pub mod error;
pub mod license;
pub mod slice;
pub mod wire;

pub use error::{ErrorBody, ErrorCode};

/// Seconds since the Unix epoch, UTC. Used for every instant on the wire and in documents so
/// that no time zone or calendar parsing is involved in signed data.
pub type UnixSeconds = i64;

/// The TCP port a server listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 48080;

/// Days a client may run on a cached grant without contacting the server, unless configured.
pub const DEFAULT_BUFFER_DAYS: u32 = 7;

/// The smallest offline buffer a client or server accepts.
pub const MIN_BUFFER_DAYS: u32 = 7;
