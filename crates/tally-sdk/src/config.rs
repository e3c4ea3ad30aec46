//! What the host application tells the SDK, checked once when the client is created so that a
//! mistake shows at start-up rather than at the first server call.

use std::path::PathBuf;
use std::time::Duration;

use tally_crypto::VerifyingKey;
use tally_proto::wire::{MAX_FRIENDLY_NAME_LEN, ValidationField};

use crate::error::{SdkError, SdkResult};

/// How the device identifies itself to servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceIdMode {
    /// A random UUID created once and kept in the state directory: no personal data, but a new
    /// identity when the state directory is lost.
    #[default]
    Random,
    /// A UUID derived from a hash of the machine id and the vendor key: survives reinstalls, and
    /// neither the raw machine id nor anything linkable across vendors leaves the device.
    Hardware,
}

/// Client configuration. Build it with [`Config::new`] and set the optional fields directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server base URLs (`http://host:port`): main first, then standbys. The next one is tried
    /// only when one does not answer.
    pub servers: Vec<String>,
    /// The vendor's Ed25519 public key (base64); only servers and licenses it signed are trusted.
    pub vendor_public_key: String,
    /// Directory for the device id, the cached grant, the clock mark and unsent usage.
    pub state_dir: PathBuf,
    /// Organization id; with an empty handshake code the organization's default code is used.
    pub organization: String,
    pub handshake_code: String,
    pub session_password: Option<String>,
    pub product: String,
    /// Major version of the product.
    pub version: Option<u32>,
    /// Modules the product needs; empty asks for none in particular.
    pub modules: Vec<String>,
    /// Domain, app id or process name, checked by the server against the handshake code.
    pub validation: ValidationField,
    /// A name for administrators (at most 255 characters).
    pub friendly_name: Option<String>,
    /// Fewer offline days than the license allows, if the product wants a shorter leash (at
    /// least 1). The license item and the server set the most; `None` asks for that.
    pub buffer_days: Option<u32>,
    /// Running instances of the product on this device, for instance-counted licenses.
    pub instances: Option<u32>,
    /// Time allowed for each HTTP call to a server.
    pub timeout: Duration,
    pub device_id: DeviceIdMode,
}

impl Config {
    /// A configuration with defaults for everything optional: no organization or handshake code
    /// (the server's public trial, if any), the offline days the license allows, a 10 s timeout
    /// and a random device id.
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
            buffer_days: None,
            instances: None,
            timeout: Duration::from_secs(10),
            device_id: DeviceIdMode::Random,
        }
    }

    /// Checks the configuration and decodes the vendor key. Errors are `InvalidInput` and name
    /// the field.
    pub(crate) fn validate(&self) -> SdkResult<VerifyingKey> {
        if self.servers.is_empty() {
            return Err(SdkError::invalid_input(
                "servers: give at least one server URL",
            ));
        }
        for s in &self.servers {
            let rest = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"));
            if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
                return Err(SdkError::invalid_input(format!(
                    "servers: `{s}` must be a URL like http://host:port"
                )));
            }
        }
        if self.product.trim().is_empty() {
            return Err(SdkError::invalid_input("product: required"));
        }
        if let Some(name) = &self.friendly_name {
            if name.chars().count() > MAX_FRIENDLY_NAME_LEN {
                return Err(SdkError::invalid_input(format!(
                    "friendly_name: at most {MAX_FRIENDLY_NAME_LEN} characters"
                )));
            }
            if name.chars().any(char::is_control) {
                return Err(SdkError::invalid_input(
                    "friendly_name: control characters are not allowed",
                ));
            }
        }
        if self.buffer_days == Some(0) {
            return Err(SdkError::invalid_input("buffer_days: at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(SdkError::invalid_input("timeout: must be more than zero"));
        }
        VerifyingKey::from_base64(&self.vendor_public_key)
            .map_err(|e| SdkError::invalid_input(format!("vendor_public_key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_proto::ErrorCode;

    fn good() -> Config {
        let key = tally_crypto::SigningKey::generate().unwrap();
        Config::new(
            vec!["http://127.0.0.1:48080".into()],
            &key.verifying_key().to_base64(),
            "/tmp/unused",
            "scanner",
        )
    }

    fn refused(c: Config) -> String {
        let e = c.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        e.message
    }

    #[test]
    fn a_good_configuration_passes() {
        good().validate().unwrap();
        let mut c = good();
        c.servers.push("https://standby.example/".into());
        c.friendly_name = Some("é".repeat(255));
        c.validate().unwrap();
    }

    #[test]
    fn mistakes_name_their_field() {
        let mut c = good();
        c.servers.clear();
        assert!(refused(c).starts_with("servers"));
        let mut c = good();
        c.servers = vec!["license.example:48080".into()];
        assert!(refused(c).starts_with("servers"));
        let mut c = good();
        c.vendor_public_key = "not a key".into();
        assert!(refused(c).starts_with("vendor_public_key"));
        let mut c = good();
        c.friendly_name = Some("x".repeat(256));
        assert!(refused(c).starts_with("friendly_name"));
        let mut c = good();
        c.buffer_days = Some(0);
        assert!(refused(c).starts_with("buffer_days"));
        let mut c = good();
        c.product = " ".into();
        assert!(refused(c).starts_with("product"));
        let mut c = good();
        c.timeout = Duration::ZERO;
        assert!(refused(c).starts_with("timeout"));
    }
}
