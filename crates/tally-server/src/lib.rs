//! The Tally server as a library, so the `tally` binary and the tests start exactly the same
//! thing: [`identity`] (who this server is), [`state`] (what every handler reaches), [`app`]
//! (the router), [`api`] (client protocol and admin API), [`service`] (the operations),
//! [`passwords`] (the password guard), and [`error`] (stable error codes to HTTP).

pub mod alerts;
pub mod api;
pub mod app;
pub mod backups;
pub mod data_dir;
pub mod error;
pub mod identity;
pub mod outcomes;
pub mod password_reset;
pub mod passwords;
pub mod portal;
pub mod replay;
pub mod secrets;
pub mod service;
pub mod serving;
pub mod settings;
pub mod state;
pub mod tls;

pub use app::{Listeners, router, serve, serve_on};
pub use settings::Settings;
pub use state::AppState;
