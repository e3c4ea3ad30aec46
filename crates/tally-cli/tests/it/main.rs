//! The one integration-test binary of the `tally` crate: a real server on a loopback port, the
//! real SDK, and the real binary for the command-line flows.

mod common;
mod import;
mod protocol;
mod cli;
mod e2e;
