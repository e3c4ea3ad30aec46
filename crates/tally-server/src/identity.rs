//! Server identity: a UUID derived from hardware labels the admin chooses, and the server's own
//! signing and encryption keys, created once in the data directory. A vendor activates licenses
//! for this identity; if the hardware labels change, the UUID no longer matches and licenses are
//! refused until they match again (nothing is deleted).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tally_crypto::{EncryptionKeyPair, SigningKey};
use tally_proto::UnixSeconds;
use tally_proto::license::{ACTIVATION_REQUEST_FORMAT, ActivationRequest, ServerPublicIdentity};

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "identity.json";
const IDENTITY_FORMAT: &str = "tally-server-identity/1";

/// A hardware property the server UUID can be derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HardwareLabel {
    /// The operating system's machine id (`/etc/machine-id` on Linux).
    MachineId,
    /// The MAC address of the first network interface.
    Mac,
    /// The motherboard serial number (DMI).
    BoardSerial,
    /// The processor identification (vendor, family, model).
    ProcessorId,
}

impl HardwareLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            HardwareLabel::MachineId => "machine-id",
            HardwareLabel::Mac => "mac",
            HardwareLabel::BoardSerial => "board-serial",
            HardwareLabel::ProcessorId => "processor-id",
        }
    }
}

impl std::str::FromStr for HardwareLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "machine-id" => Ok(HardwareLabel::MachineId),
            "mac" => Ok(HardwareLabel::Mac),
            "board-serial" => Ok(HardwareLabel::BoardSerial),
            "processor-id" => Ok(HardwareLabel::ProcessorId),
            other => Err(format!(
                "unknown hardware label `{other}` (expected machine-id, mac, board-serial or processor-id)"
            )),
        }
    }
}

/// Reads hardware labels; tests substitute a [`FixedProbe`].
pub trait HardwareProbe: Send + Sync {
    fn read(&self, label: HardwareLabel) -> Result<String, String>;
}

/// Reads the real machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemProbe;

impl HardwareProbe for SystemProbe {
    fn read(&self, label: HardwareLabel) -> Result<String, String> {
        let value = match label {
            HardwareLabel::MachineId => machine_uid::get().map_err(|e| e.to_string())?,
            HardwareLabel::Mac => match mac_address::get_mac_address() {
                Ok(Some(mac)) => mac.to_string(),
                Ok(None) => return Err("no network interface with a MAC address".into()),
                Err(e) => return Err(e.to_string()),
            },
            HardwareLabel::BoardSerial => std::fs::read_to_string("/sys/class/dmi/id/board_serial")
                .map_err(|e| e.to_string())?,
            HardwareLabel::ProcessorId => processor_id()?,
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err("the value is empty".into());
        }
        Ok(value)
    }
}

/// Vendor, family and model lines of the first processor in `/proc/cpuinfo`.
fn processor_id() -> Result<String, String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").map_err(|e| e.to_string())?;
    let wanted = ["vendor_id", "cpu family", "model", "model name"];
    let lines: Vec<&str> = info
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| {
            wanted
                .iter()
                .any(|w| l.split(':').next().map(str::trim) == Some(*w))
        })
        .collect();
    if lines.is_empty() {
        return Err("no processor identification found".into());
    }
    Ok(lines.join(";"))
}

/// Fixed label values, for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedProbe(pub BTreeMap<HardwareLabel, String>);

impl HardwareProbe for FixedProbe {
    fn read(&self, label: HardwareLabel) -> Result<String, String> {
        self.0
            .get(&label)
            .cloned()
            .ok_or_else(|| "not available".to_owned())
    }
}

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("identity file {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("hardware label `{label}` cannot be read: {reason}")]
    Hardware { label: &'static str, reason: String },
    #[error("choose at least one hardware label")]
    NoLabels,
}

/// Derives the server UUID from label values (order-independent, values never leave the server).
pub fn derive_uuid(values: &BTreeMap<HardwareLabel, String>) -> String {
    let mut material = b"tally-server-uuid/1\n".to_vec();
    for (label, value) in values {
        material.extend_from_slice(format!("{}={}\n", label.as_str(), value).as_bytes());
    }
    let digest = tally_crypto::sha256(&material);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn read_labels(
    labels: &[HardwareLabel],
    probe: &dyn HardwareProbe,
) -> Result<BTreeMap<HardwareLabel, String>, IdentityError> {
    if labels.is_empty() {
        return Err(IdentityError::NoLabels);
    }
    labels
        .iter()
        .map(|l| {
            probe
                .read(*l)
                .map(|v| (*l, v))
                .map_err(|reason| IdentityError::Hardware {
                    label: l.as_str(),
                    reason,
                })
        })
        .collect()
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    format: String,
    uuid: String,
    labels: Vec<HardwareLabel>,
    signing_key: String,
    encryption_key: String,
    created_at: UnixSeconds,
}

/// The loaded identity.
pub struct ServerIdentity {
    /// The UUID licenses are activated for (fixed at creation).
    pub uuid: String,
    pub labels: Vec<HardwareLabel>,
    pub signing: SigningKey,
    pub encryption: EncryptionKeyPair,
    /// Why the current hardware does not match `uuid`, if it does not.
    pub mismatch: Option<String>,
}

impl ServerIdentity {
    /// Loads the identity from `data_dir`, creating the directory, the keys and the UUID on first
    /// start. At every later start the labels are read again and compared.
    pub fn load_or_create(
        data_dir: &Path,
        labels: &[HardwareLabel],
        probe: &dyn HardwareProbe,
        now: UnixSeconds,
    ) -> Result<Self, IdentityError> {
        let io = |source| IdentityError::Io {
            path: data_dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let path = data_dir.join(IDENTITY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::load(&path, &text, labels, probe),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::create(&path, labels, probe, now)
            }
            Err(e) => Err(IdentityError::Io { path, source: e }),
        }
    }

    fn create(
        path: &Path,
        labels: &[HardwareLabel],
        probe: &dyn HardwareProbe,
        now: UnixSeconds,
    ) -> Result<Self, IdentityError> {
        let values = read_labels(labels, probe)?;
        let corrupt = |reason: String| IdentityError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let signing = SigningKey::generate().map_err(|e| corrupt(e.to_string()))?;
        let encryption = EncryptionKeyPair::generate().map_err(|e| corrupt(e.to_string()))?;
        let file = IdentityFile {
            format: IDENTITY_FORMAT.into(),
            uuid: derive_uuid(&values),
            labels: values.keys().copied().collect(),
            signing_key: signing.to_base64(),
            encryption_key: encryption.secret_to_base64(),
            created_at: now,
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| corrupt(e.to_string()))?;
        write_private(path, json.as_bytes()).map_err(|source| IdentityError::Io {
            path: path.to_owned(),
            source,
        })?;
        tracing::info!(uuid = %file.uuid, "created server identity");
        Ok(Self {
            uuid: file.uuid,
            labels: file.labels,
            signing,
            encryption,
            mismatch: None,
        })
    }

    fn load(
        path: &Path,
        text: &str,
        labels: &[HardwareLabel],
        probe: &dyn HardwareProbe,
    ) -> Result<Self, IdentityError> {
        let corrupt = |reason: String| IdentityError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let file: IdentityFile = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        if file.format != IDENTITY_FORMAT {
            return Err(corrupt(format!("unknown format `{}`", file.format)));
        }
        let signing =
            SigningKey::from_base64(&file.signing_key).map_err(|e| corrupt(e.to_string()))?;
        let encryption = EncryptionKeyPair::from_secret_base64(&file.encryption_key)
            .map_err(|e| corrupt(e.to_string()))?;
        let mismatch = match read_labels(labels, probe) {
            Ok(values) if derive_uuid(&values) == file.uuid => None,
            Ok(_) => Some(format!(
                "the hardware labels ({}) no longer give this server's UUID {}",
                labels
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                file.uuid
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(m) = &mismatch {
            tracing::error!(uuid = %file.uuid, problem = %m, "server identity does not match this machine; licenses are refused");
        }
        Ok(Self {
            uuid: file.uuid,
            labels: file.labels,
            signing,
            encryption,
            mismatch,
        })
    }

    pub fn public(&self) -> ServerPublicIdentity {
        ServerPublicIdentity {
            uuid: self.uuid.clone(),
            signing_key: self.signing.verifying_key().to_base64(),
            encryption_key: self.encryption.public().to_base64(),
        }
    }

    /// What the admin sends to the vendor to have a license activated for this server.
    pub fn activation_request(&self) -> ActivationRequest {
        ActivationRequest {
            format: ACTIVATION_REQUEST_FORMAT.into(),
            server: self.public(),
            labels: self.labels.iter().map(|l| l.as_str().to_owned()).collect(),
        }
    }
}

/// Writes a file readable by its owner only, durably.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        d.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(machine: &str) -> FixedProbe {
        FixedProbe(BTreeMap::from([
            (HardwareLabel::MachineId, machine.to_owned()),
            (HardwareLabel::Mac, "02:00:00:00:00:01".to_owned()),
        ]))
    }

    #[test]
    fn created_once_then_reloaded_with_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let labels = [HardwareLabel::MachineId, HardwareLabel::Mac];
        let a = ServerIdentity::load_or_create(dir.path(), &labels, &probe("m1"), 0).unwrap();
        let b = ServerIdentity::load_or_create(dir.path(), &labels, &probe("m1"), 5).unwrap();
        assert_eq!(a.public(), b.public());
        assert!(b.mismatch.is_none());
    }

    #[test]
    fn changed_hardware_is_a_mismatch_and_keeps_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let labels = [HardwareLabel::MachineId];
        let a = ServerIdentity::load_or_create(dir.path(), &labels, &probe("m1"), 0).unwrap();
        let b = ServerIdentity::load_or_create(dir.path(), &labels, &probe("m2"), 0).unwrap();
        assert_eq!(a.uuid, b.uuid);
        assert!(b.mismatch.is_some());
        assert!(dir.path().join(IDENTITY_FILE).exists());
    }

    #[test]
    fn labels_are_required_and_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            ServerIdentity::load_or_create(dir.path(), &[], &probe("m"), 0),
            Err(IdentityError::NoLabels)
        ));
        assert!(matches!(
            ServerIdentity::load_or_create(
                dir.path(),
                &[HardwareLabel::BoardSerial],
                &probe("m"),
                0
            ),
            Err(IdentityError::Hardware { .. })
        ));
    }

    #[test]
    fn uuid_depends_on_every_label() {
        let a = derive_uuid(&probe("m1").0);
        let b = derive_uuid(&probe("m2").0);
        assert_ne!(a, b);
        assert_eq!(a, derive_uuid(&probe("m1").0));
    }
}
