//! `tally client …`: the client SDK driven from a shell, configured by a TOML file (the demo
//! writes one) and/or flags.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

/// The client configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// Server URLs, main first, then standbys.
    pub servers: Vec<String>,
    pub vendor_public_key: String,
    /// Where the SDK keeps the device id, the cached grant and unsent usage.
    pub state_dir: PathBuf,
    #[serde(default)]
    pub organization: String,
    #[serde(default)]
    pub handshake_code: String,
    #[serde(default)]
    pub session_password: Option<String>,
    pub product: String,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Client configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: ClientCommand,
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

fn print_authorization(auth: &tally_sdk::Authorization) {
    let g = &auth.grant;
    println!("  device       {}", g.device_uuid);
    println!("  code         {}", g.handshake_code);
    for item in &g.items {
        println!(
            "  item         {} ({} {}, ends {})",
            item.item_id,
            item.product,
            item.license_type.as_str(),
            format_time(item.end)
        );
    }
    if let Some(seat) = g.seat_until {
        println!("  seat until   {}", format_time(seat));
    }
    println!("  valid until  {}", format_time(g.valid_until));
    if let Some(grace) = auth.grace_until {
        println!(
            "  warning      the license has ended; it works during its grace until {}",
            format_time(grace)
        );
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
pub fn format_time(t: tally_proto::UnixSeconds) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

pub fn load(path: &std::path::Path) -> anyhow::Result<ClientFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("invalid client configuration {}", path.display()))
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
    let file = load(&args.config)?;
    let client = tally_sdk::Client::new(file.sdk_config())?;
    match args.command {
        ClientCommand::Authorize => {
            let auth = client.authorize()?;
            if auth.cached {
                println!("authorized from the held grant (no server answered)");
            } else {
                println!("authorized by server {}", auth.grant.server_uuid);
            }
            print_authorization(&auth);
        }
        ClientCommand::Check => {
            let auth = client.check()?;
            println!("the held grant allows use now");
            print_authorization(&auth);
        }
        ClientCommand::Record { feature, count } => {
            client.record_usage(&feature, count)?;
            println!("recorded {count} {feature}");
        }
        ClientCommand::Flush => {
            let o = client.flush()?;
            println!(
                "sent {} reports: {} acknowledged ({} already counted), {} refused, {} pending, {} expired",
                o.sent, o.acknowledged, o.duplicates, o.refused, o.pending, o.expired
            );
            if o.usage_exhausted {
                println!(
                    "the license's usage quota is used up: the product stops until it is renewed"
                );
            }
        }
        ClientCommand::Status => {
            let s = client.status()?;
            println!("device {}", s.device_uuid);
            match &s.grant {
                Some(g) => println!(
                    "grant for `{}` (items {}), valid until {}",
                    g.handshake_code,
                    g.items.join(", "),
                    format_time(g.valid_until)
                ),
                None => println!("no grant cached"),
            }
            println!("{} reports waiting", s.pending_reports);
            for (feature, count) in &s.open_slice_counts {
                println!("  this slice: {feature} {count}");
            }
        }
    }
    Ok(())
}
