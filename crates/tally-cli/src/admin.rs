//! `tally admin …`: the admin API from a shell. The server and token come from flags, the
//! environment or a configuration file (see `admin_config`); the token may also be read from
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

use crate::admin_config;
use crate::client::format_time;
use crate::output::{count, line, print};

/// The help heading of the flags that say which server to talk to, kept apart from each
/// subcommand's own flags.
const CONNECTION: &str = "Connection";

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Server base URL [else TALLY_SERVER, else `server` in the configuration file, else
    /// http://127.0.0.1:48080].
    #[arg(long, global = true, value_name = "URL", help_heading = CONNECTION)]
    pub server: Option<String>,
    /// Admin bearer token [else TALLY_ADMIN_TOKEN, else `token` in the configuration file].
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub token: Option<String>,
    /// Server data directory whose `admin-token` file is read when no token is given [else
    /// TALLY_DATA_DIR, else `data_dir` in the configuration file, else tally-data].
    #[arg(long, global = true, value_name = "DIR", help_heading = CONNECTION)]
    pub data_dir: Option<PathBuf>,
    /// Admin configuration file (TOML with `server`, `token`, `data_dir`) [default:
    /// ./tally-admin.toml if present, else $XDG_CONFIG_HOME/tally/admin.toml].
    #[arg(long, global = true, value_name = "FILE", help_heading = CONNECTION)]
    pub config: Option<PathBuf>,
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
        #[command(flatten)]
        validation: ValidationFlags,
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
    /// Set a new portal password on the server's machine and sign every portal session out.
    /// Works on the data directory (--data-dir), not over HTTP; the password is asked at a
    /// prompt, or read from the first line of standard input when it is not a terminal.
    ResetPassword {
        /// The server's PostgreSQL database, for a server that does not use the SQLite file in
        /// its data directory.
        #[arg(long, env = "TALLY_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
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

/// The validation flags of `update-handshake`. Each list (domains, app ids, processes) is kept
/// unless a flag names it: `--domain` replaces the code's domains, `--add-domain` adds to them.
#[derive(Args, Debug, Default)]
pub struct ValidationFlags {
    /// Replace the allowed domain patterns (`*` and `?` wildcards); repeat for several.
    #[arg(long = "domain", value_name = "PATTERN")]
    domains: Vec<String>,
    /// Add an allowed domain pattern to the code's; repeat for several.
    #[arg(
        long = "add-domain",
        value_name = "PATTERN",
        conflicts_with = "domains"
    )]
    add_domains: Vec<String>,
    /// Replace the allowed app id patterns; repeat for several.
    #[arg(long = "app-id", value_name = "PATTERN")]
    app_ids: Vec<String>,
    /// Add an allowed app id pattern to the code's; repeat for several.
    #[arg(
        long = "add-app-id",
        value_name = "PATTERN",
        conflicts_with = "app_ids"
    )]
    add_app_ids: Vec<String>,
    /// Replace the allowed process name patterns; repeat for several.
    #[arg(long = "process", value_name = "PATTERN")]
    processes: Vec<String>,
    /// Add an allowed process name pattern to the code's; repeat for several.
    #[arg(
        long = "add-process",
        value_name = "PATTERN",
        conflicts_with = "processes"
    )]
    add_processes: Vec<String>,
    /// Remove every validation field (requests from anywhere are accepted).
    #[arg(long, conflicts_with_all = [
        "domains", "add_domains", "app_ids", "add_app_ids", "processes", "add_processes",
    ])]
    no_validation: bool,
}

impl ValidationFlags {
    /// Whether a list is replaced or added to (then the code's current rules are needed).
    fn edits_lists(&self) -> bool {
        [
            &self.domains,
            &self.add_domains,
            &self.app_ids,
            &self.add_app_ids,
            &self.processes,
            &self.add_processes,
        ]
        .iter()
        .any(|l| !l.is_empty())
    }

    /// The rules after the change, from the code's `current` ones.
    fn apply(self, current: ValidationRules) -> ValidationRules {
        if self.no_validation {
            return ValidationRules::default();
        }
        ValidationRules {
            domains: edit_list(current.domains, self.domains, self.add_domains),
            app_ids: edit_list(current.app_ids, self.app_ids, self.add_app_ids),
            process_names: edit_list(current.process_names, self.processes, self.add_processes),
        }
    }
}

/// `current` replaced by `replace` when it is not empty, then `add` appended; a pattern already
/// in the list is not repeated.
fn edit_list(current: Vec<String>, replace: Vec<String>, add: Vec<String>) -> Vec<String> {
    let mut list = if replace.is_empty() {
        current
    } else {
        Vec::new()
    };
    for pattern in replace.into_iter().chain(add) {
        if !list.contains(&pattern) {
            list.push(pattern);
        }
    }
    list
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
    // Local access only: the data directory, no server address nor token.
    if let AdminCommand::ResetPassword { database_url } = args.command {
        return crate::admin_reset::run(args.data_dir, database_url);
    }
    let flags = admin_config::Layer {
        server: args.server,
        token: args.token,
        data_dir: args.data_dir,
        source: "--data-dir".to_owned(),
    };
    let connection = admin_config::resolve(flags, args.config.as_deref())?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let api = Api {
        agent,
        base: connection.server,
        token: connection.token,
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
            line(serde_json::to_string_pretty(&r)?)
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
            print_or(json, &items, || items_table(&items))
        }
        AdminCommand::Handshakes => {
            let hs: Vec<HandshakeView> = api.get("/handshakes")?;
            print_or(json, &hs, || handshakes_table(&hs))
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
            validation,
            enable,
            disable,
            description,
        } => {
            let path = format!("/handshakes/{}", encode_query(&code));
            let validation = if validation.edits_lists() {
                // The server replaces the rules whole: edit the code's current ones.
                let current: HandshakeView = api.get(&path)?;
                Some(validation.apply(current.validation))
            } else if validation.no_validation {
                Some(ValidationRules::default())
            } else {
                None
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
            let h: HandshakeView = api.patch(&path, serde_json::to_vec(&change)?)?;
            print_or(json, &h, || handshake_summary(&h))
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
            line("email settings saved")
        }
        AdminCommand::TestEmail => {
            let _: serde_json::Value = api.post("/email/test", "application/json", Vec::new())?;
            line("test email sent")
        }
        AdminCommand::Alerts => {
            let alerts: Vec<AlertView> = api.get("/alerts")?;
            print_or(json, &alerts, || alerts_table(&alerts))
        }
        AdminCommand::Devices { limit, offset, all } => {
            let (path, page) = if all {
                ("/devices".to_owned(), None)
            } else {
                (
                    format!("/devices?limit={limit}&offset={offset}"),
                    Some((limit, offset)),
                )
            };
            let ds: Vec<DeviceView> = api.get(&path)?;
            print_or(json, &ds, || devices_table(&ds, page))
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
            print_or(json, &rows, || stats_table(&rows, !query.is_empty()))
        }
        // Answered above, before any server is named.
        AdminCommand::ResetPassword { .. } => {
            bail!("reset-password works on the data directory, not through a server")
        }
    }
}

/// The tables below always print their header, and a line saying so when they are empty: a
/// newcomer sees what the command lists, and that it ran.
fn items_table(items: &[ItemView]) -> String {
    let mut out = String::from("item\ttype\tproduct\tused/quantity\tend\n");
    for i in items {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}/{}\t{}\n",
            i.item_id,
            i.license_type.as_str(),
            i.product,
            i.used,
            i.quantity,
            format_time(i.end)
        ));
    }
    if items.is_empty() {
        out.push_str("no license items yet (import a license with `tally admin import FILE`)\n");
    }
    out
}

fn handshakes_table(hs: &[HandshakeView]) -> String {
    let mut out = String::from("code\torganization\titems\n");
    for h in hs {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            h.code,
            h.organization,
            h.items.join(",")
        ));
    }
    if hs.is_empty() {
        out.push_str("no handshake codes yet (importing a license creates its default code)\n");
    }
    out
}

fn alerts_table(alerts: &[AlertView]) -> String {
    let mut out = String::from("time\tsubject\temail\twebhooks\n");
    for a in alerts {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            format_time(a.at),
            a.subject,
            a.email,
            a.webhooks
        ));
        for body_line in a.body.lines() {
            out.push_str(&format!("  {body_line}\n"));
        }
    }
    if alerts.is_empty() {
        out.push_str("no alerts yet\n");
    }
    out
}

/// `page` is the limit and offset asked for; `None` lists every device.
fn devices_table(ds: &[DeviceView], page: Option<(u32, u64)>) -> String {
    let mut out = String::from("device\titem\tcode\tname\tlast seen\tactive until\n");
    for d in ds {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            d.device_uuid,
            d.item_id,
            d.handshake_code,
            d.friendly_name.as_deref().unwrap_or("-"),
            format_time(d.last_seen),
            format_time(d.active_until)
        ));
    }
    match page {
        Some((_, offset)) if ds.is_empty() && offset > 0 => {
            out.push_str(&format!("no devices past the first {offset}\n"));
        }
        _ if ds.is_empty() => out.push_str("no devices yet\n"),
        _ => out.push_str(&format!("{}\n", count(ds.len(), "device", "devices"))),
    }
    if let Some((limit, offset)) = page
        && limit > 0
        && ds.len() as u64 == u64::from(limit)
    {
        let next = offset.saturating_add(u64::from(limit));
        out.push_str(&format!("(next page: --offset {next})\n"));
    }
    out
}

fn stats_table(rows: &[UsageRow], filtered: bool) -> String {
    let mut out = String::from("day\tcode\tfeature\tcount\n");
    for r in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            r.day, r.handshake_code, r.feature, r.count
        ));
    }
    if rows.is_empty() {
        out.push_str(if filtered {
            "no usage matches these filters\n"
        } else {
            "no usage reported yet\n"
        });
    }
    out
}

/// A handshake code after a change, its validation fields included: they are what a request
/// must match, and an empty list accepts anything.
fn handshake_summary(h: &HandshakeView) -> String {
    let patterns = |list: &[String]| {
        if list.is_empty() {
            "any".to_owned()
        } else {
            list.join(", ")
        }
    };
    format!(
        "handshake code `{}`: items {} ({} order), {}, session password {}\n  \
         domains    {}\n  app ids    {}\n  processes  {}\n",
        h.code,
        h.items.join(", "),
        if h.custom_order { "custom" } else { "default" },
        if h.enabled { "enabled" } else { "DISABLED" },
        if h.has_session_password {
            "required"
        } else {
            "not required"
        },
        patterns(&h.validation.domains),
        patterns(&h.validation.app_ids),
        patterns(&h.validation.process_names),
    )
}

fn print_or<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        line(serde_json::to_string_pretty(value)?)
    } else {
        print(&text())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rules(domains: &[&str], app_ids: &[&str], processes: &[&str]) -> ValidationRules {
        ValidationRules {
            domains: strings(domains),
            app_ids: strings(app_ids),
            process_names: strings(processes),
        }
    }

    #[test]
    fn a_list_flag_changes_only_its_own_list() {
        let current = rules(&["a.example"], &["com.acme"], &["scan.exe"]);
        let replace_app = ValidationFlags {
            app_ids: strings(&["com.other"]),
            ..ValidationFlags::default()
        };
        assert!(replace_app.edits_lists());
        assert_eq!(
            replace_app.apply(current.clone()),
            rules(&["a.example"], &["com.other"], &["scan.exe"])
        );
        let add_domain = ValidationFlags {
            add_domains: strings(&["*.b.example", "a.example"]),
            ..ValidationFlags::default()
        };
        assert_eq!(
            add_domain.apply(current.clone()),
            rules(&["a.example", "*.b.example"], &["com.acme"], &["scan.exe"])
        );
        let clear = ValidationFlags {
            no_validation: true,
            ..ValidationFlags::default()
        };
        assert!(!clear.edits_lists());
        assert_eq!(clear.apply(current), ValidationRules::default());
    }

    #[test]
    fn empty_tables_keep_their_header_and_say_they_are_empty() {
        let alerts = alerts_table(&[]);
        assert!(alerts.starts_with("time\tsubject"), "{alerts}");
        assert!(alerts.contains("no alerts yet"), "{alerts}");
        assert!(items_table(&[]).starts_with("item\t"));
        assert!(handshakes_table(&[]).contains("no handshake codes yet"));
        assert!(stats_table(&[], true).contains("no usage matches"));
        assert!(devices_table(&[], None).ends_with("no devices yet\n"));
        assert!(devices_table(&[], Some((10, 20))).contains("past the first 20"));
    }

    #[test]
    fn a_device_list_counts_in_the_singular_and_the_plural() {
        let device = DeviceView {
            device_uuid: "d-1".into(),
            item_id: "I-1".into(),
            handshake_code: "c".into(),
            friendly_name: None,
            first_seen: 0,
            last_seen: 0,
            active_until: 0,
        };
        let one = devices_table(std::slice::from_ref(&device), Some((2, 0)));
        assert!(
            one.contains("\n1 device\n") && !one.contains("next page"),
            "{one}"
        );
        let two = devices_table(&[device.clone(), device], Some((2, 0)));
        assert!(
            two.contains("\n2 devices\n(next page: --offset 2)\n"),
            "{two}"
        );
    }
}
