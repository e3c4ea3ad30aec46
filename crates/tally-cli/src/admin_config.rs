//! Where `tally admin` finds its server and token, so they need not be typed on every call:
//! flags, else the environment (`TALLY_SERVER`, `TALLY_ADMIN_TOKEN`, `TALLY_DATA_DIR`), else a
//! configuration file (`--config FILE`, else `./tally-admin.toml`, else
//! `$XDG_CONFIG_HOME/tally/admin.toml`) with the keys `server`, `token` and `data_dir`.
//!
//! The token is taken from the first of these layers that names a token *or* a data directory
//! (whose `admin-token` file holds it), the token first within a layer: `--data-dir` typed on the
//! command line must not lose to a token in a file that may belong to another server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Where the server listens when nothing names it (the port `tally serve` binds by default).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:48080";
/// The data directory `tally serve` uses by default, read when nothing names a token.
pub const DEFAULT_DATA_DIR: &str = "tally-data";
/// The configuration file looked for in the current directory.
pub const LOCAL_FILE: &str = "tally-admin.toml";

/// One layer of settings; absent keys fall through to the next layer.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub server: Option<String>,
    pub token: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// What gave these values, for error messages.
    #[serde(skip)]
    pub source: String,
}

/// What `tally admin` talks to, resolved.
#[derive(Debug, PartialEq, Eq)]
pub struct Connection {
    pub server: String,
    pub token: String,
}

/// Resolves the flags (`flags.source` names them), the environment and the configuration file.
pub fn resolve(flags: Layer, config: Option<&Path>) -> anyhow::Result<Connection> {
    let file = match config_path(config)? {
        Some(path) => load(&path)?,
        None => Layer::default(),
    };
    resolve_layers(&[flags, from_env()?, file])
}

/// `layers` in precedence order, highest first.
fn resolve_layers(layers: &[Layer]) -> anyhow::Result<Connection> {
    let server = layers
        .iter()
        .find_map(|l| l.server.clone())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    Ok(Connection {
        server,
        token: token(layers)?,
    })
}

fn token(layers: &[Layer]) -> anyhow::Result<String> {
    for layer in layers {
        if let Some(token) = &layer.token {
            return Ok(token.clone());
        }
        if let Some(dir) = &layer.data_dir {
            return read_token(dir)
                .with_context(|| format!("no token given; data directory from {}", layer.source));
        }
    }
    read_token(Path::new(DEFAULT_DATA_DIR)).context(
        "no admin token: give --token, TALLY_ADMIN_TOKEN or `token` in the admin configuration \
         file, or --data-dir, TALLY_DATA_DIR or `data_dir` naming the server's data directory",
    )
}

/// The token `tally serve` wrote into its data directory.
fn read_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(tally_server::state::ADMIN_TOKEN_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let token = text.trim();
    anyhow::ensure!(!token.is_empty(), "{} is empty", path.display());
    Ok(token.to_owned())
}

fn from_env() -> anyhow::Result<Layer> {
    Ok(Layer {
        server: env_string("TALLY_SERVER")?,
        token: env_string("TALLY_ADMIN_TOKEN")?,
        data_dir: std::env::var_os("TALLY_DATA_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        source: "the environment (TALLY_DATA_DIR)".to_owned(),
    })
}

/// The variable's value; unset and empty are the same (`TALLY_SERVER= tally admin …`).
fn env_string(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not valid UTF-8"),
    }
}

/// The configuration file to read: the one named (which must exist), else the first that exists
/// of `./tally-admin.toml` and `$XDG_CONFIG_HOME/tally/admin.toml` (`~/.config` when unset).
fn config_path(named: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(path) = named {
        anyhow::ensure!(
            path.is_file(),
            "admin configuration file {} does not exist",
            path.display()
        );
        return Ok(Some(path.to_owned()));
    }
    let local = PathBuf::from(LOCAL_FILE);
    if local.is_file() {
        return Ok(Some(local));
    }
    Ok(user_config_dir()
        .map(|dir| dir.join("tally").join("admin.toml"))
        .filter(|p| p.is_file()))
}

/// `$XDG_CONFIG_HOME`, else `$HOME/.config`; relative values are ignored, as the XDG Base
/// Directory specification asks.
fn user_config_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CONFIG_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".config"))
        })
}

/// Reads a configuration file; a relative `data_dir` is resolved against the file's folder, so
/// the file means the same server wherever the command runs.
fn load(path: &Path) -> anyhow::Result<Layer> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut layer: Layer = toml::from_str(&text)
        .with_context(|| format!("invalid admin configuration {}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    layer.data_dir = layer.data_dir.map(|d| folder.join(d));
    layer.source = format!("`data_dir` in {}", path.display());
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(server: Option<&str>, token: Option<&str>, data_dir: Option<&Path>) -> Layer {
        Layer {
            server: server.map(str::to_owned),
            token: token.map(str::to_owned),
            data_dir: data_dir.map(Path::to_owned),
            source: "test".to_owned(),
        }
    }

    fn data_dir_with_token(token: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin-token"), format!("{token}\n")).unwrap();
        dir
    }

    #[test]
    fn each_key_comes_from_the_highest_layer_that_has_it() {
        let c = resolve_layers(&[
            layer(None, Some("flag-token"), None),
            layer(Some("http://env"), Some("env-token"), None),
            layer(Some("http://file"), None, None),
        ])
        .unwrap();
        assert_eq!(c.server, "http://env");
        assert_eq!(c.token, "flag-token");
        let c = resolve_layers(&[layer(None, Some("t"), None)]).unwrap();
        assert_eq!(c.server, DEFAULT_SERVER);
    }

    #[test]
    fn a_data_dir_on_a_higher_layer_beats_a_token_on_a_lower_one() {
        let data = data_dir_with_token("from-data-dir");
        let c = resolve_layers(&[
            layer(None, None, Some(data.path())),
            layer(None, Some("from-file"), None),
        ])
        .unwrap();
        assert_eq!(c.token, "from-data-dir");
        let c = resolve_layers(&[layer(None, Some("flag"), Some(data.path()))]).unwrap();
        assert_eq!(c.token, "flag", "within a layer the token comes first");
    }

    #[test]
    fn a_missing_token_file_names_where_the_data_dir_came_from() {
        let empty = tempfile::tempdir().unwrap();
        let mut l = layer(None, None, Some(empty.path()));
        l.source = "--data-dir".to_owned();
        let err = format!("{:#}", resolve_layers(&[l]).unwrap_err());
        assert!(
            err.contains("--data-dir") && err.contains("admin-token"),
            "{err}"
        );
    }

    #[test]
    fn a_files_data_dir_is_read_from_the_files_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.toml");
        std::fs::write(&path, "server = \"http://s:1\"\ndata_dir = \"data\"\n").unwrap();
        let l = load(&path).unwrap();
        assert_eq!(l.data_dir.unwrap(), dir.path().join("data"));
        assert_eq!(l.server.as_deref(), Some("http://s:1"));
        std::fs::write(&path, "sever = \"typo\"\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("sever"), "{err}");
    }
}
