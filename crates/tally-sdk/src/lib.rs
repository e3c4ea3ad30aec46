//! The Tally client SDK, with a blocking API so a host application needs no async runtime.
//!
//! ```no_run
//! let config = tally_sdk::Config::new(
//!     vec!["http://license.example:48080".into()],
//!     "VENDOR_PUBLIC_KEY_BASE64",
//!     "/var/lib/myapp/license",
//!     "scanner",
//! );
//! let client = std::sync::Arc::new(tally_sdk::Client::new(config)?);
//! let auth = client.authorize()?; // `auth.cached` is true when no server answered
//! let _background = client.spawn_background(tally_sdk::DEFAULT_REPORT_INTERVAL)?;
//! client.record_usage("scan", 1)?;
//! client.check()?; // may the product run now? (no network)
//! # Ok::<(), tally_sdk::SdkError>(())
//! ```
//!
//! * [`Client::authorize`] asks the servers in order (main, then standbys) and verifies the chain
//!   vendor key → server certificate (the hello) → activated license → server keys → signed
//!   grant → granted items. A server refusal is returned with its stable code; a sealed refusal
//!   that denies this device the license makes the SDK forget its grant. Only when no server gives
//!   an answer (transport failure, or a server that cannot show a vendor certificate for its keys)
//!   is the held grant used: verified again, before its `valid_until`, with the clock not turned
//!   back; the result then says `cached` with the warning `1001 cached_grant_used`.
//! * A grant's `valid_until` depends on the license type (a concurrent seat's end plus a minute,
//!   the end of the UTC day, or the offline days the license allows); [`Client::check`] judges the
//!   held grant locally, and [`Client::spawn_background`] renews it at its `renew_at` and sends
//!   usage reports, so the host only records usage and checks.
//! * [`Client::record_usage`] counts per 3-minute UTC slice, durably before it returns. A closed
//!   slice becomes a report whose id (UUID v7) never changes, so the server counts it once
//!   however often [`Client::flush`] retries it. Unsent reports are kept 30 days. Reports travel
//!   in the report session an authorization opened (symmetric encryption, no public-key work);
//!   without one, flush authorizes first.
//! * Errors are [`SdkError`]s with the stable codes of `docs/error-codes.md`.
//!
//! The state directory holds, each file replaced atomically and accessed under a lock shared by
//! threads and processes:
//!
//! | file | content |
//! | --- | --- |
//! | `device-id` | the random device UUID ([`DeviceIdMode::Random`]) |
//! | `grant.json` | the last verified signed grant, its certificates and the server identity |
//! | `session.json` | the report session: server, ticket, session key, last message number |
//! | `refusal.json` | why the server last refused this device for good (the grant was forgotten) |
//! | `clock.json` | the highest device clock reading seen (rollback detection) |
//! | `usage.json` | the open slice's counters and the reports not yet acknowledged |
//! | `lock` | empty; the advisory lock |

mod authorize;
mod background;
mod client;
mod config;
pub mod conformance;
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
