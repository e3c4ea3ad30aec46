//! `tally client …`: the client SDK driven from a shell, configured by flags and/or a TOML file
//! (the demo writes one). Flags override the file's keys, so a script can drive many devices
//! from one file (or none), each with its own `--state-dir`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::output::{count, line};

/// A complete client configuration, as the demo writes it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientFile {
    /// Server URLs, main first, then standbys.
    pub servers: Vec<String>,
    pub vendor_public_key: String,
    /// Where the SDK keeps the device id, the cached grant and unsent usage. Written absolute:
    /// a relative path in the file would be read against the file's folder, not against the
    /// directory of the process that wrote it.
    #[serde(serialize_with = "serialize_absolute")]
    pub state_dir: PathBuf,
    pub organization: String,
    pub handshake_code: String,
    pub session_password: Option<String>,
    pub product: String,
    pub version: Option<u32>,
    pub modules: Vec<String>,
    pub friendly_name: Option<String>,
}

fn serialize_absolute<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    std::path::absolute(path)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// The client configuration file as read: every key may be left to a flag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKeys {
    servers: Option<Vec<String>>,
    vendor_public_key: Option<String>,
    state_dir: Option<PathBuf>,
    organization: Option<String>,
    handshake_code: Option<String>,
    session_password: Option<String>,
    product: Option<String>,
    version: Option<u32>,
    #[serde(default)]
    modules: Vec<String>,
    friendly_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Client configuration file (TOML); the flags below override its keys, and a relative
    /// `state_dir` in it is read from the file's folder.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: ClientFlags,
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The common keys of the configuration file, as flags.
#[derive(Args, Debug, Default)]
pub struct ClientFlags {
    /// Server URL, main first; repeat for standbys (replaces the file's `servers`).
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,
    /// The vendor's public key (base64).
    #[arg(long, value_name = "KEY")]
    pub vendor_public_key: Option<String>,
    /// This device's folder: device id, grant, unsent usage (one per device).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Organization id; its default handshake code is used when no code is given.
    #[arg(long, value_name = "ID")]
    pub organization: Option<String>,
    /// Handshake code from the administrator (instead of the organization's default code).
    #[arg(long, value_name = "CODE")]
    pub handshake_code: Option<String>,
    /// Product name, as the license items name it.
    #[arg(long, value_name = "NAME")]
    pub product: Option<String>,
    /// The handshake code's session password, when it requires one.
    #[arg(long, value_name = "PASSWORD")]
    pub session_password: Option<String>,
    /// A name for administrators (shown in `tally admin devices`).
    #[arg(long, value_name = "NAME")]
    pub friendly_name: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Ask the server for a grant (falls back to the held grant when no server answers).
    Authorize,
    /// Whether the product may run now, from the held grant alone (no server contacted).
    Check,
    /// Count usage of a feature in the current 3-minute slice.
    Record {
        feature: String,
        #[arg(default_value_t = 1)]
        count: u64,
    },
    /// Send pending usage reports now.
    Flush,
    /// Device id, cached grant and pending usage.
    Status,
}

fn print_authorization(auth: &tally_sdk::Authorization) -> anyhow::Result<()> {
    let g = &auth.grant;
    let mut out = format!(
        "  device       {}\n  code         {}\n",
        g.device_uuid, g.handshake_code
    );
    for item in &g.items {
        out.push_str(&format!(
            "  item         {} ({} {}, ends {})\n",
            item.item_id,
            item.product,
            item.license_type.as_str(),
            format_time(item.end)
        ));
    }
    if let Some(seat) = g.seat_until {
        out.push_str(&format!("  seat until   {}\n", format_time(seat)));
    }
    out.push_str(&format!("  valid until  {}\n", format_time(g.valid_until)));
    if let Some(grace) = auth.grace_until {
        out.push_str(&format!(
            "  warning      the license has ended; it works during its grace until {}\n",
            format_time(grace)
        ));
    }
    crate::output::print(&out)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (see `tally_proto::time_text`).
pub use tally_proto::time_text::second as format_time;

/// Reads a configuration file; a relative `state_dir` is resolved against the file's folder, so
/// the same file is the same device whatever the current directory.
fn load(path: &Path) -> anyhow::Result<FileKeys> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut keys: FileKeys = toml::from_str(&text)
        .with_context(|| format!("invalid client configuration {}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    keys.state_dir = keys.state_dir.map(|d| folder.join(d));
    Ok(keys)
}

/// The configuration from `flags` over the file's keys; an error names the flag and the key of
/// a required value that neither gives.
fn resolve(config: Option<&Path>, flags: ClientFlags) -> anyhow::Result<ClientFile> {
    let file = match config {
        Some(path) => load(path)?,
        None => FileKeys::default(),
    };
    let missing = |flag: &str, key: &str| match config {
        Some(path) => anyhow!(
            "missing {key}: give {flag} or set `{key}` in {}",
            path.display()
        ),
        None => anyhow!("missing {key}: give {flag} (or --config FILE with `{key}`)"),
    };
    let servers = Some(flags.servers)
        .filter(|s| !s.is_empty())
        .or(file.servers)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("--server URL", "servers"))?;
    Ok(ClientFile {
        servers,
        vendor_public_key: flags
            .vendor_public_key
            .or(file.vendor_public_key)
            .ok_or_else(|| missing("--vendor-public-key KEY", "vendor_public_key"))?,
        state_dir: flags
            .state_dir
            .or(file.state_dir)
            .ok_or_else(|| missing("--state-dir DIR", "state_dir"))?,
        organization: flags.organization.or(file.organization).unwrap_or_default(),
        handshake_code: flags
            .handshake_code
            .or(file.handshake_code)
            .unwrap_or_default(),
        session_password: flags.session_password.or(file.session_password),
        product: flags
            .product
            .or(file.product)
            .ok_or_else(|| missing("--product NAME", "product"))?,
        version: file.version,
        modules: file.modules,
        friendly_name: flags.friendly_name.or(file.friendly_name),
    })
}

impl ClientFile {
    fn sdk_config(&self) -> tally_sdk::Config {
        let mut c = tally_sdk::Config::new(
            self.servers.clone(),
            &self.vendor_public_key,
            self.state_dir.clone(),
            &self.product,
        );
        c.organization = self.organization.clone();
        c.handshake_code = self.handshake_code.clone();
        c.session_password = self.session_password.clone();
        c.version = self.version;
        c.modules = self.modules.clone();
        c.friendly_name = self.friendly_name.clone();
        c
    }
}

pub fn run(args: ClientArgs) -> anyhow::Result<()> {
    let config = resolve(args.config.as_deref(), args.flags)?;
    let client = tally_sdk::Client::new(config.sdk_config())?;
    match args.command {
        ClientCommand::Authorize => {
            let auth = client.authorize()?;
            if auth.cached {
                line("authorized from the held grant (no server answered)")?;
            } else {
                line(format_args!(
                    "authorized by server {}",
                    auth.grant.server_uuid
                ))?;
            }
            print_authorization(&auth)
        }
        ClientCommand::Check => {
            let auth = client.check()?;
            line("the held grant allows use now")?;
            print_authorization(&auth)
        }
        ClientCommand::Record { feature, count } => {
            client.record_usage(&feature, count)?;
            line(format_args!("recorded {count} {feature}"))
        }
        ClientCommand::Flush => {
            let o = client.flush()?;
            line(format_args!(
                "sent {}: {} acknowledged ({} already counted), {} refused, {} pending, {} expired",
                count(o.sent, "report", "reports"),
                o.acknowledged,
                o.duplicates,
                o.refused,
                o.pending,
                o.expired
            ))?;
            if o.usage_exhausted {
                line(
                    "the license's usage quota is used up: the product stops until it is renewed",
                )?;
            }
            Ok(())
        }
        ClientCommand::Status => print_status(&client.status()?),
    }
}

fn print_status(s: &tally_sdk::Status) -> anyhow::Result<()> {
    let mut out = format!("device {}\n", s.device_uuid);
    match &s.grant {
        Some(g) => out.push_str(&format!(
            "grant for `{}` (items {}), valid until {}\n",
            g.handshake_code,
            g.items.join(", "),
            format_time(g.valid_until)
        )),
        None => out.push_str("no grant cached\n"),
    }
    out.push_str(&format!(
        "{} waiting\n",
        count(s.pending_reports, "report", "reports")
    ));
    for (feature, n) in &s.open_slice_counts {
        out.push_str(&format!("  this slice: {feature} {n}\n"));
    }
    crate::output::print(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_override_the_file_and_its_state_dir_is_read_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "client.toml",
            "servers = [\"http://a:1\"]\nvendor_public_key = \"K\"\nstate_dir = \"state\"\n\
             product = \"scanner\"\norganization = \"acme\"\nmodules = [\"qr\"]\n",
        );
        let c = resolve(Some(&path), ClientFlags::default()).unwrap();
        assert_eq!(c.state_dir, dir.path().join("state"));
        assert_eq!((c.servers.len(), c.modules.len()), (1, 1));
        let flags = ClientFlags {
            servers: vec!["http://b:2".into(), "http://c:3".into()],
            product: Some("other".into()),
            state_dir: Some("here".into()),
            ..ClientFlags::default()
        };
        let c = resolve(Some(&path), flags).unwrap();
        assert_eq!(c.servers, ["http://b:2", "http://c:3"]);
        assert_eq!(c.product, "other");
        assert_eq!(
            c.state_dir,
            Path::new("here"),
            "a flag's path is the caller's"
        );
        assert_eq!(c.organization, "acme");
    }

    #[test]
    fn a_missing_required_value_names_the_flag_and_the_key() {
        let err = resolve(None, ClientFlags::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--server") && err.contains("servers"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "c.toml", "servers = [\"http://a:1\"]\n");
        let err = resolve(Some(&path), ClientFlags::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--vendor-public-key") && err.contains("c.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_written_file_holds_an_absolute_state_dir() {
        let file = ClientFile {
            servers: vec!["http://a:1".into()],
            vendor_public_key: "K".into(),
            state_dir: "relative/state".into(),
            organization: String::new(),
            handshake_code: String::new(),
            session_password: None,
            product: "p".into(),
            version: None,
            modules: Vec::new(),
            friendly_name: None,
        };
        let text = toml::to_string_pretty(&file).unwrap();
        let keys: FileKeys = toml::from_str(&text).unwrap();
        let state = keys.state_dir.unwrap();
        assert!(
            state.is_absolute() && state.ends_with("relative/state"),
            "{text}"
        );
    }
}
