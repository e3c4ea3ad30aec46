//! HTTP handlers: [`client`] for the SDK protocol, [`admin`] for the bearer-token admin API.
//! Handlers only translate HTTP; the work is in [`crate::service`].

pub mod admin;
pub mod body;
pub mod client;
