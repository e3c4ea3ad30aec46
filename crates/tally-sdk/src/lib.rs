//! The Tally client SDK, with a blocking API so a host application needs no async runtime.
//!
//! ```no_run
//! let config = tally_sdk::Config::new(
//!     vec!["http://license.example:48080".into()],
//!     "VENDOR_PUBLIC_KEY_BASE64",
//!     "/var/lib/myapp/license",
//!     "scanner",
//! );
//! let client = tally_sdk::Client::new(config)?;
//! let auth = client.authorize()?; // `auth.cached` is true when no server answered
//! client.record_usage("scan", 1)?;
//! client.flush()?;
//! # Ok::<(), tally_sdk::SdkError>(())
//! ```
//!
//! * [`Client::authorize`] verifies the grant's chain: vendor key → activated license → server
//!   key → grant. A verified grant is cached on disk and used, reported as cached, while no server
//!   answers and until its `valid_until`.
//! * Usage is counted per 3-minute UTC slice in a crash-safe file; each closed slice becomes a
//!   report with a unique id, sent by [`Client::flush`] and counted once by the server however
//!   often it is retried. Unsent reports are kept 30 days.

mod client;
mod config;
mod error;
mod files;
mod reporter;
mod transport;
mod usage;
mod verify;

pub use client::{Authorization, Client, FlushOutcome, GrantSummary, Status};
pub use config::{Config, DeviceIdMode};
pub use error::{SdkError, SdkResult};
pub use reporter::{DEFAULT_REPORT_INTERVAL, Reporter};
pub use tally_proto::ErrorCode;
pub use tally_proto::wire::{Grant, GrantedItem, ValidationField};
