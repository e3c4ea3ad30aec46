//! Integration tests of the SDK against fixtures built with `tally-crypto` (vendor key, server
//! keys, activated licenses, signed grants) and a minimal in-test HTTP server speaking protocol 2
//! as the real server does.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod fake_server;
mod fixtures;

mod device;
mod offline;
mod online;
mod quota;
mod session;
mod usage;
mod vectors;
