//! Server settings. The binary fills them from defaults, `tally.toml`, `TALLY_*` environment
//! variables and flags (figment); tests build them directly.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::identity::HardwareLabel;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP listener binds.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding the identity, the database and the admin token.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The software vendor's Ed25519 public key (base64); only licenses it signed are imported.
    #[serde(default)]
    pub vendor_public_key: Option<String>,
    /// Hardware labels the server UUID is derived from (at least one).
    #[serde(default = "default_labels")]
    pub hardware_labels: Vec<HardwareLabel>,
    /// Most days a device may work offline on a grant, lowering the caps the license items state
    /// (never raising them). Absent: each item's own cap.
    #[serde(default)]
    pub buffer_days: Option<u32>,
    /// Admin bearer token; when absent one is generated into `<data_dir>/admin-token`.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Organization whose default handshake code serves public trials (no organization and no
    /// code given). No trials when absent.
    #[serde(default)]
    pub trial_organization: Option<String>,
    /// Length of a public trial in days.
    #[serde(default = "default_trial_days")]
    pub trial_days: u32,
    /// How often usage alerts are evaluated.
    #[serde(default = "default_alert_interval")]
    pub alert_interval_seconds: u64,
    /// At most one internal-error notice per this many seconds (the first goes out at once).
    #[serde(default = "default_alert_interval")]
    pub error_notice_interval_seconds: u64,
    /// No longer used: failed deliveries follow the retry schedule of `tally_core::delivery`.
    /// Still accepted, so that settings files that set it keep loading.
    #[serde(default = "default_webhook_backoff")]
    pub webhook_backoff_ms: u64,
    /// Longest one email or webhook attempt may take in total (connection, TLS, every reply).
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout_seconds: u64,
    /// Seconds between online backups of the database; 0 turns them off.
    #[serde(default = "default_backup_interval")]
    pub backup_interval_seconds: u64,
    /// Where backups go. Absent: `<data_dir>/backups`.
    #[serde(default)]
    pub backup_dir: Option<PathBuf>,
    /// Periodic backups kept; older ones are removed.
    #[serde(default = "default_backup_keep")]
    pub backup_keep: u32,
    /// A PostgreSQL database (`postgres://user@host:port/database`) instead of the SQLite file in
    /// the data directory; several instances may share it.
    #[serde(default)]
    pub database_url: Option<String>,
    /// File holding the key that seals stored secrets (SMTP password, webhook secret). Absent:
    /// `<data_dir>/secret-key`, made at first start. Instances sharing a database name the same
    /// file.
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// Seconds a client has to send a request's headers before the connection is closed.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
    /// HTTPS on `listen`: `off` (plain HTTP), `self-signed` (a certificate made at first start in
    /// `<data_dir>/tls/`) or `files` (`tls_cert_file` and `tls_key_file`, read again on SIGHUP
    /// and when they change).
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM certificate chain (the server's certificate first) for `tls = "files"`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls = "files"`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Host names and addresses the self-signed certificate is made for. Empty: `localhost`,
    /// this machine's host name and the loopback addresses.
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// With HTTPS on, a second listener in plain HTTP (for example `0.0.0.0:80`); none when
    /// absent.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// What that plain HTTP listener does: redirect every request to HTTPS (true), or serve it.
    #[serde(default = "default_true")]
    pub http_redirect: bool,
    /// `Strict-Transport-Security` max-age sent on HTTPS answers; 0 sends none.
    #[serde(default = "default_hsts")]
    pub hsts_max_age_seconds: u64,
}

/// Whether and how the server speaks HTTPS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    #[default]
    Off,
    SelfSigned,
    Files,
}

/// URL schemes of a PostgreSQL `database_url`.
pub const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("vendor_public_key", &self.vendor_public_key)
            .field("hardware_labels", &self.hardware_labels)
            .field("buffer_days", &self.buffer_days)
            .field("backup_interval_seconds", &self.backup_interval_seconds)
            .field("backup_dir", &self.backup_dir)
            .field("backup_keep", &self.backup_keep)
            .field("secret_key_file", &self.secret_key_file)
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("tls", &self.tls)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("http_listen", &self.http_listen)
            // The URL may carry a password.
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A week: a longer gap between backups is surely a typo (milliseconds?).
const MAX_BACKUP_INTERVAL: u64 = 7 * 86_400;

/// Five minutes: headers slower than that are an attack or a broken client.
const MAX_HEADER_TIMEOUT: u64 = 300;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], tally_proto::DEFAULT_PORT))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("tally-data")
}
fn default_labels() -> Vec<HardwareLabel> {
    vec![HardwareLabel::MachineId, HardwareLabel::Mac]
}
fn default_alert_interval() -> u64 {
    600
}
fn default_webhook_backoff() -> u64 {
    1000
}
fn default_delivery_timeout() -> u64 {
    15
}
fn default_backup_interval() -> u64 {
    720
}
fn default_backup_keep() -> u32 {
    10
}
fn default_header_timeout() -> u64 {
    10
}
fn default_true() -> bool {
    true
}
/// A year, what browsers' preload lists ask for at least.
fn default_hsts() -> u64 {
    31_536_000
}
fn default_trial_days() -> u32 {
    7
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            vendor_public_key: None,
            hardware_labels: default_labels(),
            buffer_days: None,
            admin_token: None,
            trial_organization: None,
            trial_days: default_trial_days(),
            alert_interval_seconds: default_alert_interval(),
            error_notice_interval_seconds: default_alert_interval(),
            webhook_backoff_ms: default_webhook_backoff(),
            delivery_timeout_seconds: default_delivery_timeout(),
            backup_interval_seconds: default_backup_interval(),
            backup_dir: None,
            backup_keep: default_backup_keep(),
            database_url: None,
            secret_key_file: None,
            header_timeout_seconds: default_header_timeout(),
            tls: TlsMode::Off,
            tls_cert_file: None,
            tls_key_file: None,
            tls_names: Vec::new(),
            http_listen: None,
            http_redirect: true,
            hsts_max_age_seconds: default_hsts(),
        }
    }
}

impl Settings {
    /// Checks what serde cannot: returns a message naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.hardware_labels.is_empty() {
            return Err("hardware_labels: choose at least one hardware label".into());
        }
        if !(1..=365).contains(&self.trial_days) {
            return Err("trial_days: between 1 and 365".into());
        }
        if !(1..=300).contains(&self.delivery_timeout_seconds) {
            return Err("delivery_timeout_seconds: between 1 and 300".into());
        }
        if self.backup_keep == 0 {
            return Err(
                "backup_keep: keep at least 1 backup (backup_interval_seconds = 0 turns them off)"
                    .into(),
            );
        }
        if self.backup_interval_seconds > MAX_BACKUP_INTERVAL {
            return Err(format!(
                "backup_interval_seconds: at most {MAX_BACKUP_INTERVAL} (a week), or 0 for none"
            ));
        }
        if let Some(url) = &self.database_url
            && !POSTGRES_SCHEMES.iter().any(|s| url.starts_with(s))
        {
            return Err(
                "database_url: a PostgreSQL URL (postgres://user@host:port/database); leave it out for the SQLite file in the data directory"
                    .into(),
            );
        }
        if !(1..=MAX_HEADER_TIMEOUT).contains(&self.header_timeout_seconds) {
            return Err(format!(
                "header_timeout_seconds: between 1 and {MAX_HEADER_TIMEOUT}"
            ));
        }
        self.validate_tls()?;
        if let Some(days) = self.buffer_days
            && !(1..=tally_proto::MAX_OFFLINE_DAYS).contains(&days)
        {
            return Err(format!(
                "buffer_days: between 1 and {}",
                tally_proto::MAX_OFFLINE_DAYS
            ));
        }
        match &self.vendor_public_key {
            None => Err(
                "vendor_public_key: the vendor's public key is required (base64 Ed25519)".into(),
            ),
            Some(k) => tally_crypto::VerifyingKey::from_base64(k)
                .map(|_| ())
                .map_err(|e| format!("vendor_public_key: {e}")),
        }
    }
}

impl Settings {
    fn validate_tls(&self) -> Result<(), String> {
        let files = self.tls_cert_file.is_some() || self.tls_key_file.is_some();
        match self.tls {
            TlsMode::Files if self.tls_cert_file.is_none() || self.tls_key_file.is_none() => {
                return Err(
                    "tls: \"files\" needs both tls_cert_file and tls_key_file (PEM files)".into(),
                );
            }
            TlsMode::Off | TlsMode::SelfSigned if files => {
                return Err(
                    "tls_cert_file, tls_key_file: set tls = \"files\" to serve HTTPS with them"
                        .into(),
                );
            }
            TlsMode::Off if self.http_listen.is_some() => {
                return Err(
                    "http_listen: a second, plain HTTP listener is only for when tls is on; `listen` already serves HTTP"
                        .into(),
                );
            }
            _ => {}
        }
        if self.http_listen.is_some_and(|http| http == self.listen) {
            return Err("http_listen: must differ from listen".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key() -> Settings {
        Settings {
            vendor_public_key: Some(
                tally_crypto::SigningKey::generate()
                    .unwrap()
                    .verifying_key()
                    .to_base64(),
            ),
            ..Settings::default()
        }
    }

    #[test]
    fn offline_and_backup_settings_are_checked_and_name_themselves() {
        with_key().validate().unwrap();
        let bad = [
            Settings {
                buffer_days: Some(0),
                ..with_key()
            },
            Settings {
                buffer_days: Some(tally_proto::MAX_OFFLINE_DAYS + 1),
                ..with_key()
            },
            Settings {
                backup_keep: 0,
                ..with_key()
            },
            Settings {
                backup_interval_seconds: MAX_BACKUP_INTERVAL + 1,
                ..with_key()
            },
            Settings {
                database_url: Some("mysql://root@localhost/tally".into()),
                ..with_key()
            },
        ];
        let names = [
            "buffer_days",
            "buffer_days",
            "backup_keep",
            "backup_interval_seconds",
            "database_url",
        ];
        for (settings, name) in bad.into_iter().zip(names) {
            let e = settings.validate().unwrap_err();
            assert!(e.starts_with(name), "{e}");
        }
        let off = Settings {
            backup_interval_seconds: 0,
            buffer_days: Some(1),
            database_url: Some("postgres://tally@db.internal:5432/tally".into()),
            ..with_key()
        };
        off.validate().unwrap();
    }

    #[test]
    fn tls_settings_must_agree() {
        let files = |cert: bool, key: bool| Settings {
            tls: TlsMode::Files,
            tls_cert_file: cert.then(|| "cert.pem".into()),
            tls_key_file: key.then(|| "key.pem".into()),
            ..with_key()
        };
        files(true, true).validate().unwrap();
        for bad in [files(true, false), files(false, true)] {
            assert!(bad.validate().unwrap_err().starts_with("tls:"));
        }
        let stray = Settings {
            tls_cert_file: Some("cert.pem".into()),
            ..with_key()
        };
        assert!(stray.validate().unwrap_err().starts_with("tls_cert_file"));
        let plain_second = Settings {
            http_listen: Some("127.0.0.1:8080".parse().unwrap()),
            ..with_key()
        };
        assert!(
            plain_second
                .validate()
                .unwrap_err()
                .starts_with("http_listen")
        );
        let same = Settings {
            tls: TlsMode::SelfSigned,
            http_listen: Some(with_key().listen),
            ..with_key()
        };
        assert!(same.validate().unwrap_err().starts_with("http_listen"));
        let redirecting = Settings {
            tls: TlsMode::SelfSigned,
            http_listen: Some("127.0.0.1:8080".parse().unwrap()),
            ..with_key()
        };
        redirecting.validate().unwrap();
    }

    #[test]
    fn the_header_timeout_is_bounded() {
        for (seconds, ok) in [
            (0, false),
            (1, true),
            (MAX_HEADER_TIMEOUT, true),
            (MAX_HEADER_TIMEOUT + 1, false),
        ] {
            let settings = Settings {
                header_timeout_seconds: seconds,
                ..with_key()
            };
            let result = settings.validate();
            assert_eq!(result.is_ok(), ok, "{seconds}: {result:?}");
            if let Err(e) = result {
                assert!(e.starts_with("header_timeout_seconds"), "{e}");
            }
        }
    }
}
