//! What the server does, independent of HTTP: each module is one operation the API exposes.

pub mod alerting;
pub mod audit;
pub mod authorize;
pub mod handshakes;
pub mod licenses;
pub mod origins;
pub mod password;
pub mod report;
pub mod stats;
pub mod validate;
