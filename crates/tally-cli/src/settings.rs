//! Layered server settings: built-in defaults, then `tally.toml` (or `--config`), then `TALLY_*`
//! environment variables, then command-line flags. Errors name the source of a bad value.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use tally_server::Settings;

/// `TALLY_*` variables that belong to the command-line tools and the test build, not to the
/// server's settings: a shell that sets them for `tally admin` must still be able to start a
/// server, while a misspelt server setting is still refused.
const TOOL_VARIABLES: &[&str] = &[
    "log",
    "server",
    "config",
    "smtp_password",
    "test_bin_dir",
    "test_database_url",
];

/// Flags that override the other layers when given.
#[derive(Debug, Default, serde::Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

pub fn load(config: Option<&Path>, overrides: Overrides) -> anyhow::Result<Settings> {
    let mut fig = Figment::from(Serialized::defaults(Settings::default()));
    match config {
        Some(path) => {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            fig = fig.merge(Toml::file(path));
        }
        None => fig = fig.merge(Toml::file("tally.toml")),
    }
    let settings: Settings = fig
        .merge(Env::prefixed("TALLY_").ignore(TOOL_VARIABLES))
        .merge(Serialized::defaults(overrides))
        .extract()
        .context("invalid settings")?;
    Ok(settings)
}
