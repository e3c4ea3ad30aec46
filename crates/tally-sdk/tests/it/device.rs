//! Device identity and configuration checks.

use std::sync::Arc;

use tally_sdk::{Client, DeviceIdMode, ErrorCode};

use crate::fixtures::*;

#[test]
fn the_device_uuid_is_stable_across_clients_and_distinct_per_state_dir() {
    let f = Fixture::new();
    let first = f.offline_client().device_uuid().to_owned();
    let second = f.offline_client().device_uuid().to_owned();
    assert_eq!(first, second);
    assert_eq!(
        std::fs::read_to_string(f.state_dir().join("device-id"))
            .unwrap()
            .trim(),
        first
    );
    let other = Fixture::new();
    assert_ne!(other.offline_client().device_uuid(), first);
    let status = f.offline_client().status().unwrap();
    assert_eq!(status.device_uuid, first);
    assert_eq!(status.grant, None);
    assert_eq!(status.pending_reports, 0);
}

#[test]
fn a_hardware_device_uuid_does_not_depend_on_the_state_dir() {
    let f = Fixture::new();
    let mut c = f.config(&[UNREACHABLE]);
    c.device_id = DeviceIdMode::Hardware;
    let Ok(a) = Client::with_clock(c.clone(), Arc::new(f.clock.clone())) else {
        return; // no machine id in this environment (e.g. a minimal container)
    };
    c.state_dir = f.dir.path().join("elsewhere");
    let b = Client::with_clock(c, Arc::new(f.clock.clone())).unwrap();
    assert_eq!(a.device_uuid(), b.device_uuid());
    let machine_id = machine_uid::get().unwrap();
    assert!(!a.device_uuid().contains(machine_id.trim()));
}

#[test]
fn a_bad_configuration_is_refused_with_a_clear_error() {
    let f = Fixture::new();
    let mut c = f.config(&[]);
    let e = Client::new(c.clone()).err().unwrap();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.to_string().starts_with("306 invalid_input: servers"),
        "{e}"
    );

    c.servers = vec![UNREACHABLE.into()];
    c.vendor_public_key = "AAAA".into();
    let e = Client::new(c.clone()).err().unwrap();
    assert!(e.message.contains("vendor_public_key"), "{e}");

    c.vendor_public_key = f.vendor.verifying_key().to_base64();
    c.friendly_name = Some("n".repeat(256));
    let e = Client::new(c).err().unwrap();
    assert!(e.message.contains("friendly_name"), "{e}");
}
