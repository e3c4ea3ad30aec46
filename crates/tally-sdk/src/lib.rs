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
//! * [`Client::authorize`] asks the servers in order (main, then standbys) and verifies the chain
//!   vendor key → activated license ("certificate") → server keys → signed grant → granted items.
//!   A server refusal is returned with its stable code. Only when no server gives an answer
//!   (transport failure, or a server that cannot show a vendor activation for its keys) is the
//!   cached grant used: verified again, before its `valid_until`, with the clock not turned back;
//!   the result then says `cached` with the warning `1001 cached_grant_used`.
//! * [`Client::record_usage`] counts per 3-minute UTC slice, durably before it returns. A closed
//!   slice becomes a report whose id (UUID v7) never changes, so the server counts it once
//!   however often [`Client::flush`] retries it. Unsent reports are kept 30 days. After an
//!   authorization, reports travel in its report session (symmetric encryption, no public-key
//!   work); without one they are sealed to the server key like an authorization.
//! * Errors are [`SdkError`]s with the stable codes of `docs/error-codes.md`.
//!
//! The state directory holds, each file replaced atomically and accessed under a lock shared by
//! threads and processes:
//!
//! | file | content |
//! | --- | --- |
//! | `device-id` | the random device UUID ([`DeviceIdMode::Random`]) |
//! | `grant.json` | the last verified signed grant, its certificates and the server identity |
//! | `clock.json` | the highest device clock reading seen (rollback detection) |
//! | `usage.json` | the open slice's counters and the reports not yet acknowledged |
//! | `lock` | empty; the advisory lock |

mod authorize;
mod background;
mod client;
mod config;
mod device;
mod error;
mod report;
mod report_session;
mod rollback;
mod session;
mod state;
mod transport;
mod usage;
mod verify;

pub use authorize::Authorization;
pub use background::{Background, DEFAULT_REPORT_INTERVAL};
pub use client::{Client, GrantSummary, Status};
pub use config::{Config, DeviceIdMode};
pub use error::{SdkError, SdkResult};
pub use report::FlushOutcome;
pub use rollback::ROLLBACK_TOLERANCE_SECONDS;
pub use tally_proto::ErrorCode;
pub use tally_proto::wire::{Grant, GrantedItem, ValidationField};
pub use usage::RETENTION_SECONDS;
