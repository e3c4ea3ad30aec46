//! `tally admin …`: the admin API from a shell. The token is given with `--token`, or read from
//! `<data-dir>/admin-token` when the command runs on the server's machine.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use tally_proto::ErrorBody;
use tally_proto::admin::{
    AlertView, CreateHandshake, DeviceView, EmailSettings, HandshakeView, ImportedLicense,
    ItemView, ServerStatus, SmtpTls, UpdateHandshake, UsageRow, ValidationRules,
};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:48080", env = "TALLY_SERVER")]
    pub server: String,
    /// Admin bearer token.
    #[arg(long, env = "TALLY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from this server data directory when --token is absent.
    #[arg(long, default_value = "tally-data")]
    pub data_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Server UUID, version and health of its identity.
    Status,
    /// The activation request to send to the vendor.
    ActivationRequest,
    /// Import an activated license file.
    Import { file: PathBuf },
    /// License items with their usage.
    Items,
    /// Handshake codes.
    Handshakes,
    /// Create a handshake code with items in consumption order.
    CreateHandshake {
        #[arg(long)]
        organization: String,
        /// Item id; repeat in consumption order.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        /// The code (generated when absent).
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a handshake code: consumption order, session password, validation fields, enabled.
    UpdateHandshake {
        code: String,
        /// Item id; repeat in the consumption order you choose.
        #[arg(long = "item")]
        items: Vec<String>,
        /// Return to the default consumption order.
        #[arg(long, conflicts_with = "items")]
        default_order: bool,
        /// Require this session password from clients.
        #[arg(long, conflicts_with = "no_session_password")]
        session_password: Option<String>,
        /// Stop requiring a session password.
        #[arg(long)]
        no_session_password: bool,
        /// Allowed domain pattern (`*` and `?` wildcards); repeat for several.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Allowed app id pattern; repeat for several.
        #[arg(long = "app-id")]
        app_ids: Vec<String>,
        /// Allowed process name pattern; repeat for several.
        #[arg(long = "process")]
        processes: Vec<String>,
        /// Remove every validation field.
        #[arg(long, conflicts_with_all = ["domains", "app_ids", "processes"])]
        no_validation: bool,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// Save the SMTP settings used for alerts.
    SetEmail {
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 587)]
        port: u16,
        /// none, starttls or tls.
        #[arg(long, default_value = "starttls")]
        tls: String,
        /// From address, e.g. "Tally <tally@example.com>".
        #[arg(long)]
        sender: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, env = "TALLY_SMTP_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        #[arg(long = "cc")]
        cc: Vec<String>,
        #[arg(long = "bcc")]
        bcc: Vec<String>,
    },
    /// Send a test email with the saved SMTP settings.
    TestEmail,
    /// Alerts sent, newest first.
    Alerts,
    /// Registered devices, most recently seen first, one page at a time.
    Devices {
        /// Devices per page.
        #[arg(long, default_value_t = 200)]
        limit: u32,
        /// Devices skipped before the page (200 shows the second page of 200).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Every registration at once (can be millions of lines).
        #[arg(long, conflicts_with_all = ["limit", "offset"])]
        all: bool,
    },
    /// Usage per handshake code, per day and per feature.
    Stats {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        #[arg(long = "code")]
        handshake_code: Option<String>,
    },
}

struct Api {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}/api/admin{path}", self.base.trim_end_matches('/'))
    }

    fn finish<T: DeserializeOwned>(
        &self,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> anyhow::Result<T> {
        let status = resp.status();
        let text = resp
            .body_mut()
            .read_to_string()
            .context("cannot read the server's answer")?;
        if status.is_success() {
            return serde_json::from_str(&text).context("unexpected answer from the server");
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => bail!("server refused ({} {}): {}", e.code, e.name, e.message),
            Err(_) => bail!("server answered HTTP {status}: {text}"),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self
            .agent
            .get(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("cannot reach {}", self.base))?;
        self.finish(resp)
    }

    /// Sends `body` with `req` (a POST, PUT or PATCH) and reads the answer.
    fn with_body<T: DeserializeOwned>(
        &self,
        req: ureq::RequestBuilder<ureq::typestate::WithBody>,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        let resp = req
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(&body[..])
            .with_context(|| format!("cannot reach {}", self.base))?;
        self.finish(resp)
    }

    fn put<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> anyhow::Result<T> {
        self.with_body(self.agent.put(&self.url(path)), "application/json", body)
    }

    fn patch<T: DeserializeOwned>(&self, path: &str, body: Vec<u8>) -> anyhow::Result<T> {
        self.with_body(self.agent.patch(&self.url(path)), "application/json", body)
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<T> {
        self.with_body(self.agent.post(&self.url(path)), content_type, body)
    }
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let token = match args.token {
        Some(t) => t,
        None => {
            let path = args.data_dir.join(tally_server::app::ADMIN_TOKEN_FILE);
            std::fs::read_to_string(&path)
                .with_context(|| format!("no --token given and cannot read {}", path.display()))?
                .trim()
                .to_owned()
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let api = Api {
        agent,
        base: args.server,
        token,
    };
    let json = args.json;
    match args.command {
        AdminCommand::Status => {
            let s: ServerStatus = api.get("/status")?;
            print_or(json, &s, || {
                format!(
                    "server {}\nversion {}\nidentity {}\nlicenses {}\n",
                    s.uuid,
                    s.version,
                    if s.identity_ok {
                        "ok"
                    } else {
                        "MISMATCH: licenses refused"
                    },
                    s.licenses
                )
            })
        }
        AdminCommand::ActivationRequest => {
            let r: serde_json::Value = api.get("/activation-request")?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        AdminCommand::Import { file } => {
            let text =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r: ImportedLicense = api.post("/licenses", "text/plain", text)?;
            print_or(json, &r, || {
                format!(
                    "{} license {} ({}) for organization {}: items {}; default handshake code `{}`\n",
                    if r.newly_imported {
                        "imported"
                    } else {
                        "already imported:"
                    },
                    r.license_id,
                    r.alias,
                    r.organization,
                    r.items.join(", "),
                    r.default_handshake_code
                )
            })
        }
        AdminCommand::Items => {
            let items: Vec<ItemView> = api.get("/items")?;
            print_or(json, &items, || {
                let mut out = String::from("item\ttype\tproduct\tused/quantity\tend\n");
                for i in &items {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}/{}\t{}\n",
                        i.item_id,
                        i.license_type.as_str(),
                        i.product,
                        i.used,
                        i.quantity,
                        crate::client::format_time(i.end)
                    ));
                }
                out
            })
        }
        AdminCommand::Handshakes => {
            let hs: Vec<HandshakeView> = api.get("/handshakes")?;
            print_or(json, &hs, || {
                let mut out = String::from("code\torganization\titems\n");
                for h in &hs {
                    out.push_str(&format!(
                        "{}\t{}\t{}\n",
                        h.code,
                        h.organization,
                        h.items.join(",")
                    ));
                }
                out
            })
        }
        AdminCommand::CreateHandshake {
            organization,
            items,
            code,
            description,
        } => {
            let body = serde_json::to_vec(&CreateHandshake {
                code,
                organization,
                items,
                description,
            })?;
            let h: HandshakeView = api.post("/handshakes", "application/json", body)?;
            print_or(json, &h, || {
                format!("created handshake code `{}`\n", h.code)
            })
        }
        AdminCommand::UpdateHandshake {
            code,
            items,
            default_order,
            session_password,
            no_session_password,
            domains,
            app_ids,
            processes,
            no_validation,
            enable,
            disable,
            description,
        } => {
            let validation = if no_validation {
                Some(ValidationRules::default())
            } else if domains.is_empty() && app_ids.is_empty() && processes.is_empty() {
                None
            } else {
                Some(ValidationRules {
                    domains,
                    app_ids,
                    process_names: processes,
                })
            };
            let change = UpdateHandshake {
                items: (!items.is_empty()).then_some(items),
                default_order,
                session_password: if no_session_password {
                    Some(String::new())
                } else {
                    session_password
                },
                validation,
                enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
                description,
            };
            let h: HandshakeView = api.patch(
                &format!("/handshakes/{}", encode_query(&code)),
                serde_json::to_vec(&change)?,
            )?;
            print_or(json, &h, || {
                format!(
                    "handshake code `{}`: items {} ({} order), {}, session password {}\n",
                    h.code,
                    h.items.join(", "),
                    if h.custom_order { "custom" } else { "default" },
                    if h.enabled { "enabled" } else { "DISABLED" },
                    if h.has_session_password {
                        "required"
                    } else {
                        "not required"
                    },
                )
            })
        }
        AdminCommand::SetEmail {
            host,
            port,
            tls,
            sender,
            username,
            password,
            to,
            cc,
            bcc,
        } => {
            let tls = match tls.as_str() {
                "none" => SmtpTls::None,
                "starttls" => SmtpTls::Starttls,
                "tls" => SmtpTls::Tls,
                other => bail!("--tls: `{other}` is not none, starttls or tls"),
            };
            let settings = EmailSettings {
                host,
                port,
                tls,
                sender,
                username,
                password,
                to,
                cc,
                bcc,
            };
            let _: serde_json::Value = api.put("/email", serde_json::to_vec(&settings)?)?;
            println!("email settings saved");
            Ok(())
        }
        AdminCommand::TestEmail => {
            let _: serde_json::Value = api.post("/email/test", "application/json", Vec::new())?;
            println!("test email sent");
            Ok(())
        }
        AdminCommand::Alerts => {
            let alerts: Vec<AlertView> = api.get("/alerts")?;
            print_or(json, &alerts, || {
                let mut out = String::new();
                for a in &alerts {
                    out.push_str(&format!(
                        "{}  {}  (email: {}; webhooks: {})\n{}\n\n",
                        crate::client::format_time(a.at),
                        a.subject,
                        a.email,
                        a.webhooks,
                        a.body
                    ));
                }
                out
            })
        }
        AdminCommand::Devices { limit, offset, all } => {
            let path = if all {
                "/devices".to_owned()
            } else {
                format!("/devices?limit={limit}&offset={offset}")
            };
            let ds: Vec<DeviceView> = api.get(&path)?;
            print_or(json, &ds, || {
                let mut out = String::from("device\titem\tcode\tname\tlast seen\tactive until\n");
                for d in &ds {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\n",
                        d.device_uuid,
                        d.item_id,
                        d.handshake_code,
                        d.friendly_name.as_deref().unwrap_or("-"),
                        crate::client::format_time(d.last_seen),
                        crate::client::format_time(d.active_until)
                    ));
                }
                if !all && ds.len() as u64 == u64::from(limit) && limit > 0 {
                    let next = offset.saturating_add(u64::from(limit));
                    out.push_str(&format!("(next page: --offset {next})\n"));
                }
                out
            })
        }
        AdminCommand::Stats {
            from,
            to,
            handshake_code,
        } => {
            let mut query = Vec::new();
            for (k, v) in [
                ("from", from),
                ("to", to),
                ("handshake_code", handshake_code),
            ] {
                if let Some(v) = v {
                    query.push(format!("{k}={}", encode_query(&v)));
                }
            }
            let path = if query.is_empty() {
                "/stats/usage".to_owned()
            } else {
                format!("/stats/usage?{}", query.join("&"))
            };
            let rows: Vec<UsageRow> = api.get(&path)?;
            print_or(json, &rows, || {
                let mut out = String::from("day\tcode\tfeature\tcount\n");
                for r in &rows {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\n",
                        r.day, r.handshake_code, r.feature, r.count
                    ));
                }
                out
            })
        }
    }
}

fn print_or<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// Percent-encodes a query value (only unreserved characters pass).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
