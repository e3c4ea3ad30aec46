//! The rules of Tally, free of I/O so they can be tested exactly and reused by every store:
//!
//! * [`clock`]: the injectable clock every time-dependent rule reads.
//! * [`resolve`]: which handshake code a request (organization, code) asks for.
//! * [`matching`]: whether a license item serves a request (product, version, modules, dates).
//! * [`order`]: the default consumption order of items on a handshake code.
//! * [`admission`]: quota decisions, taken by a store inside one write transaction.
//! * [`live_state`]: what a store counts for an admission, per license type.
//! * [`validity`]: how long a device may use a grant by itself, and when it renews it.
//! * [`reporting`]: who may report usage, and in which slice it counts.
//! * [`replay_window`]: which report-session message numbers are accepted, once.
//! * [`origin`]: which web pages (browser `Origin`s) a handshake code allows.
//! * [`delivery`]: when a failed alert delivery is tried again, and when it is given up.

pub mod admission;
pub mod alerts;
pub mod clock;
pub mod delivery;
#[cfg(test)]
mod fixtures;
pub mod live_state;
pub mod matching;
pub mod order;
pub mod origin;
pub mod replay_window;
pub mod reporting;
pub mod resolve;
pub mod validation;
pub mod validity;

pub use clock::{Clock, ManualClock, SystemClock};
