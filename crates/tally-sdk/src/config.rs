//! What the host application tells the SDK.

use std::path::PathBuf;
use std::time::Duration;

use tally_crypto::VerifyingKey;
use tally_proto::ErrorCode;
use tally_proto::wire::ValidationField;

use crate::error::{SdkError, SdkResult};

/// How the device identifies itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceIdMode {
    /// A random UUID created once and kept in the state directory (no personal data).
    #[default]
    Random,
    /// A UUID derived from a hash of the machine id (survives reinstalls; the raw id never
    /// leaves the device).
    Hardware,
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server base URLs: main first, then standbys. The next is tried when one does not answer.
    pub servers: Vec<String>,
    /// The vendor's Ed25519 public key (base64); only licenses it signed are trusted.
    pub vendor_public_key: String,
    /// Directory for the device id, the cached grant, the clock mark and unsent usage.
    pub state_dir: PathBuf,
    pub organization: String,
    pub handshake_code: String,
    pub session_password: Option<String>,
    pub product: String,
    /// Major version of the product.
    pub version: Option<u32>,
    pub modules: Vec<String>,
    pub validation: ValidationField,
    /// A name for administrators (at most 255 characters).
    pub friendly_name: Option<String>,
    /// Days the grant may be used offline (at least 7).
    pub buffer_days: u32,
    /// Running instances of the product on this device, for instance-counted licenses.
    pub instances: Option<u32>,
    /// Time allowed for each server call.
    pub timeout: Duration,
    pub device_id: DeviceIdMode,
}

impl Config {
    pub fn new(
        servers: Vec<String>,
        vendor_public_key: &str,
        state_dir: impl Into<PathBuf>,
        product: &str,
    ) -> Self {
        Self {
            servers,
            vendor_public_key: vendor_public_key.to_owned(),
            state_dir: state_dir.into(),
            organization: String::new(),
            handshake_code: String::new(),
            session_password: None,
            product: product.to_owned(),
            version: None,
            modules: Vec::new(),
            validation: ValidationField::default(),
            friendly_name: None,
            buffer_days: tally_proto::DEFAULT_BUFFER_DAYS,
            instances: None,
            timeout: Duration::from_secs(10),
            device_id: DeviceIdMode::Random,
        }
    }

    /// Checks the configuration and decodes the vendor key.
    pub(crate) fn validate(&self) -> SdkResult<VerifyingKey> {
        let bad = |m: String| SdkError::new(ErrorCode::BadRequest, m);
        if self.servers.is_empty() {
            return Err(bad("servers: give at least one server URL".into()));
        }
        for s in &self.servers {
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(bad(format!(
                    "servers: `{s}` must start with http:// or https://"
                )));
            }
        }
        if self.product.trim().is_empty() {
            return Err(bad("product: required".into()));
        }
        if let Some(name) = &self.friendly_name
            && name.chars().count() > tally_proto::wire::MAX_FRIENDLY_NAME_LEN
        {
            return Err(bad("friendly_name: at most 255 characters".into()));
        }
        if self.buffer_days < tally_proto::MIN_BUFFER_DAYS {
            return Err(bad(format!(
                "buffer_days: at least {}",
                tally_proto::MIN_BUFFER_DAYS
            )));
        }
        VerifyingKey::from_base64(&self.vendor_public_key)
            .map_err(|e| bad(format!("vendor_public_key: {e}")))
    }
}
