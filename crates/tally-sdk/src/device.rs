//! The device UUID servers count this device by. It never carries a raw hardware value.

use crate::config::DeviceIdMode;
use crate::error::{SdkError, SdkResult};
use crate::state::{DEVICE_ID, StateLock, write_atomic};

/// The device UUID for `mode`: for `Random`, the one kept in the state directory (created on
/// first use); for `Hardware`, one derived from the machine id.
pub fn device_uuid(
    mode: DeviceIdMode,
    vendor_public_key: &str,
    lock: &StateLock<'_>,
) -> SdkResult<String> {
    match mode {
        DeviceIdMode::Random => stored_or_new(lock),
        DeviceIdMode::Hardware => {
            let machine_id = machine_uid::get().map_err(|e| {
                SdkError::storage(
                    "cannot read the machine id (DeviceIdMode::Random needs none)",
                    e,
                )
            })?;
            Ok(from_machine_id(&machine_id, vendor_public_key))
        }
    }
}

fn stored_or_new(lock: &StateLock<'_>) -> SdkResult<String> {
    let path = lock.path(DEVICE_ID);
    match std::fs::read_to_string(&path) {
        Ok(text) => uuid::Uuid::parse_str(text.trim())
            .map(|u| u.to_string())
            .map_err(|e| {
                SdkError::storage(
                    &format!("{} is damaged (it must hold a UUID)", path.display()),
                    e,
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            write_atomic(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(SdkError::storage(
            &format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// A UUID (version 8) from SHA-256 of the machine id salted with the vendor key, so that two
/// vendors' servers cannot link the same machine.
fn from_machine_id(machine_id: &str, vendor_public_key: &str) -> String {
    let digest = tally_crypto::sha256(
        format!(
            "tally-device/1\n{}\n{}",
            vendor_public_key.trim(),
            machine_id.trim()
        )
        .as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn random_ids_are_created_once_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let lock = state.lock().unwrap();
        let a = device_uuid(DeviceIdMode::Random, "k", &lock).unwrap();
        let b = device_uuid(DeviceIdMode::Random, "k", &lock).unwrap();
        assert_eq!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
        std::fs::write(lock.path(DEVICE_ID), "garbage").unwrap();
        assert!(device_uuid(DeviceIdMode::Random, "k", &lock).is_err());
    }

    #[test]
    fn hardware_ids_are_stable_per_vendor_and_hide_the_machine_id() {
        let a = from_machine_id("0123456789abcdef", "vendor-a");
        assert_eq!(a, from_machine_id("0123456789abcdef\n", "vendor-a"));
        assert_ne!(a, from_machine_id("0123456789abcdef", "vendor-b"));
        assert_ne!(a, from_machine_id("0123456789abcdee", "vendor-a"));
        assert!(!a.replace('-', "").contains("0123456789abcdef"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
    }
}
