//! The one integration-test binary of the `tally` crate: a real server on a loopback port, the
//! real SDK, and the real binary for the command-line flows.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod admin_cli;
mod alerts;
mod backups;
mod browser;
mod cli;
mod client_cli;
mod cluster;
mod common;
mod cors;
mod e2e;
mod engine;
mod hardening;
mod https;
mod import;
mod limits;
mod migrate;
mod passwords;
mod portal;
mod postgres;
mod processes;
mod protocol;
mod readme;
mod sdk_browser;
mod sdk_c;
mod sdk_python;
mod shared_database;
