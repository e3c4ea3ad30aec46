//! Tests of the C ABI from Rust (the C and C++ programs run against a real server in the `tally`
//! crate's end-to-end tests): its behaviour at the boundary, the committed header, the docs.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

#[allow(unsafe_code)] // the C ABI is called as C calls it
mod abi;
mod docs;
mod header;
