//! License documents: what a vendor issues, and what it signs again when it activates a license
//! for a named set of server instances. The armoring and signatures are in `tally-crypto::document`.

use serde::{Deserialize, Serialize};

use crate::UnixSeconds;

/// Format tag of an issued license file payload.
pub const LICENSE_FORMAT: &str = "tally-license/1";
/// Format tag of an activated license file payload.
pub const ACTIVATED_FORMAT: &str = "tally-activated-license/3";
/// Format tag of a server certificate payload.
pub const CERTIFICATE_FORMAT: &str = "tally-server-certificate/1";
/// Most server instances one activation may name.
pub const MAX_ACTIVATED_SERVERS: usize = 16;

/// How a license item counts (its "charge way").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseType {
    PerDevice,
    PerActiveDevice,
    ConcurrentDevice,
    ConcurrentInstance,
    PerInstance,
    PerUsage,
    PerDomain,
}

impl LicenseType {
    pub const ALL: &'static [LicenseType] = &[
        LicenseType::PerDevice,
        LicenseType::PerActiveDevice,
        LicenseType::ConcurrentDevice,
        LicenseType::ConcurrentInstance,
        LicenseType::PerInstance,
        LicenseType::PerUsage,
        LicenseType::PerDomain,
    ];

    /// The kebab-case name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseType::PerDevice => "per-device",
            LicenseType::PerActiveDevice => "per-active-device",
            LicenseType::ConcurrentDevice => "concurrent-device",
            LicenseType::ConcurrentInstance => "concurrent-instance",
            LicenseType::PerInstance => "per-instance",
            LicenseType::PerUsage => "per-usage",
            LicenseType::PerDomain => "per-domain",
        }
    }

    /// Default grace, in percent of the quantity.
    pub fn default_grace_percent(self) -> u8 {
        match self {
            LicenseType::PerUsage => 5,
            LicenseType::PerDevice | LicenseType::PerInstance => 10,
            LicenseType::ConcurrentDevice | LicenseType::ConcurrentInstance => 10,
            LicenseType::PerActiveDevice | LicenseType::PerDomain => 0,
        }
    }
}

impl std::str::FromStr for LicenseType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LicenseType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = LicenseType::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "unknown license type `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// How long a per-device registration stays active after the device's last contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ActiveWindow {
    #[serde(rename = "24h")]
    Hours24,
    #[serde(rename = "30d")]
    Days30,
    #[serde(rename = "90d")]
    Days90,
    #[default]
    #[serde(rename = "365d")]
    Days365,
}

impl ActiveWindow {
    pub fn seconds(self) -> i64 {
        match self {
            ActiveWindow::Hours24 => 86_400,
            ActiveWindow::Days30 => 30 * 86_400,
            ActiveWindow::Days90 => 90 * 86_400,
            ActiveWindow::Days365 => 365 * 86_400,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveWindow::Hours24 => "24h",
            ActiveWindow::Days30 => "30d",
            ActiveWindow::Days90 => "90d",
            ActiveWindow::Days365 => "365d",
        }
    }
}

impl std::str::FromStr for ActiveWindow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "24h" => Ok(ActiveWindow::Hours24),
            "30d" => Ok(ActiveWindow::Days30),
            "90d" => Ok(ActiveWindow::Days90),
            "365d" => Ok(ActiveWindow::Days365),
            other => Err(format!(
                "unknown active window `{other}` (expected 24h, 30d, 90d or 365d)"
            )),
        }
    }
}

/// The licensee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// One purchasable quota inside a license file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseItem {
    /// Unique across every license of the vendor (e.g. `L-…-1`).
    pub id: String,
    pub product: String,
    /// Allowed product versions as a major-version range; `None` allows every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionRange>,
    /// Modules this item unlocks; a request may ask for a subset.
    #[serde(default)]
    pub modules: Vec<String>,
    pub license_type: LicenseType,
    pub quantity: u64,
    pub start: UnixSeconds,
    pub end: UnixSeconds,
    pub grace_percent: u8,
    #[serde(default)]
    pub active_window: ActiveWindow,
    /// For per-usage items: the usage feature counted against the quantity (e.g. `scan`). When
    /// absent, every top-level feature (a name without `.`) counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Most days a device may work offline on a grant of this item; absent means
    /// [`crate::DEFAULT_OFFLINE_DAYS`]. The server's settings may lower it, never raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offline_days: Option<u32>,
    /// Days the item keeps authorizing after its end (devices see a grace status); absent means
    /// [`crate::DEFAULT_GRACE_DAYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_days: Option<u32>,
}

impl LicenseItem {
    /// The vendor's cap on offline days for this item.
    pub fn offline_days_cap(&self) -> u32 {
        self.max_offline_days.unwrap_or(crate::DEFAULT_OFFLINE_DAYS)
    }

    /// When the grace after the item's end is over: the item authorizes nobody from then on.
    pub fn grace_end(&self) -> UnixSeconds {
        let days = i64::from(self.grace_days.unwrap_or(crate::DEFAULT_GRACE_DAYS));
        self.end.saturating_add(days.saturating_mul(86_400))
    }

    /// Whether usage of `feature` counts against this item's quantity (per-usage items).
    pub fn counts_feature(&self, feature: &str) -> bool {
        match &self.metric {
            Some(m) => m == feature,
            None => !feature.contains('.'),
        }
    }
}

/// An inclusive range of major versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    pub min_major: u32,
    pub max_major: u32,
}

impl VersionRange {
    pub fn contains(&self, major: u32) -> bool {
        (self.min_major..=self.max_major).contains(&major)
    }
}

/// The payload of a license file as issued by the vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    pub format: String,
    pub license_id: String,
    pub organization: Organization,
    pub alias: String,
    pub issued_at: UnixSeconds,
    pub items: Vec<LicenseItem>,
}

/// The public half of a server identity: what a vendor binds a license to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPublicIdentity {
    pub uuid: String,
    /// Ed25519 public key (base64) the server signs grants with.
    pub signing_key: String,
    /// X25519 public key (base64) clients encrypt requests to.
    pub encryption_key: String,
}

/// What `tally identity` prints and the vendor's `activate` consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRequest {
    pub format: String,
    pub server: ServerPublicIdentity,
    /// Names of the hardware labels the UUID was derived from (never their values).
    pub labels: Vec<String>,
}

/// Format tag of an activation request.
pub const ACTIVATION_REQUEST_FORMAT: &str = "tally-activation-request/1";

/// The payload of an activated license file: the license, bound to a named set of server
/// instances (each with its own identity, all serving the same clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivatedLicense {
    pub format: String,
    pub license: License,
    /// The instances the license is activated for: 1 to [`MAX_ACTIVATED_SERVERS`], distinct
    /// UUIDs and keys.
    pub servers: Vec<ServerPublicIdentity>,
    pub activated_at: UnixSeconds,
    /// The armored [`ServerCertificate`] of each of `servers`, in the same order: what that
    /// instance shows anyone to prove its keys, without the license's organization, items or
    /// quantities.
    pub certificates: Vec<String>,
}

impl ActivatedLicense {
    /// Whether the license is activated for exactly `server` (same UUID and keys).
    pub fn names(&self, server: &ServerPublicIdentity) -> bool {
        self.servers.iter().any(|s| s == server)
    }

    /// The armored certificate of `server`, when the license is activated for it.
    pub fn certificate_of(&self, server: &ServerPublicIdentity) -> Option<&str> {
        let at = self.servers.iter().position(|s| s == server)?;
        self.certificates.get(at).map(String::as_str)
    }

    /// The UUIDs of the servers, comma-separated (for messages).
    pub fn server_uuids(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.uuid.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The vendor's signature on "this server, with these keys, serves license `license_id`": what a
/// client needs to trust a server before it sends anything, and nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCertificate {
    pub format: String,
    pub license_id: String,
    pub server: ServerPublicIdentity,
    pub activated_at: UnixSeconds,
}
