//! `tally client` as a newcomer meets it, the real binary against a real server: many devices
//! from flags alone, a configuration file that is the same device from any directory, flags over
//! the file, and clear errors for what is missing.

use std::path::Path;
use std::process::Command;

use crate::cli::{command, fails, ok, succeeds};
use crate::common::{TestServer, per_device};

/// A server whose clock is the real one (the binary's SDK runs on the system clock), with
/// organization `acme`'s license for 5 devices of `scanner`.
fn server() -> TestServer {
    let s = TestServer::start();
    s.clock.set(now());
    s.import(&s.activated("L-1", "acme", vec![per_device("I-1", "scanner", 5, 0)]));
    s
}

fn now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

fn vendor_key(s: &TestServer) -> String {
    s.vendor.verifying_key().to_base64()
}

/// `tally client` with every common field as a flag; the device is its `state_dir`.
fn device(s: &TestServer, dir: &Path, state_dir: &str, args: &[&str]) -> Command {
    s.clock.set(now());
    let key = vendor_key(s);
    let mut all = vec![
        "client",
        "--server",
        &s.url,
        "--vendor-public-key",
        &key,
        "--state-dir",
        state_dir,
        "--organization",
        "acme",
        "--product",
        "scanner",
        "--friendly-name",
        state_dir,
    ];
    all.extend_from_slice(args);
    command(dir, &all)
}

/// The line `device <uuid>` of `tally client status`.
fn device_line(status: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with("device "))
        .unwrap_or_else(|| panic!("no device line in {status}"))
        .to_owned()
}

#[test]
fn a_script_drives_many_devices_with_flags_and_no_file() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["scanner-1", "scanner-2", "scanner-3"] {
        let out = succeeds(&mut device(&s, d, name, &["authorize"]));
        assert!(out.contains("authorized by server"), "{out}");
        assert!(d.join(name).is_dir(), "each device keeps its own state");
    }
    succeeds(&mut device(&s, d, "scanner-1", &["record", "scan", "2"]));
    let status = succeeds(&mut device(&s, d, "scanner-1", &["status"]));
    assert!(status.contains("\n1 report waiting\n"), "{status}");
    let out = succeeds(&mut device(&s, d, "scanner-1", &["flush"]));
    assert!(out.starts_with("sent 1 report: 1 acknowledged"), "{out}");
    let status = succeeds(&mut device(&s, d, "scanner-1", &["status"]));
    assert!(status.contains("\n0 reports waiting\n"), "{status}");

    let token = s.token();
    let admin = ["admin", "--server", &s.url, "--token", &token, "devices"];
    let devices = ok(d, &admin);
    assert!(devices.contains("\n3 devices\n"), "{devices}");
    assert!(devices.contains("\tscanner-2\t"), "{devices}");
    let page = ok(d, &[&admin[..], &["--limit", "1"]].concat());
    assert!(
        page.contains("\n1 device\n(next page: --offset 1)\n"),
        "{page}"
    );
}

#[test]
fn a_config_file_is_the_same_device_from_any_directory_and_flags_override_it() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("conf");
    std::fs::create_dir(&conf).unwrap();
    // The file's server does not answer and its product has no license: flags replace both.
    std::fs::write(
        conf.join("client.toml"),
        format!(
            "servers = [\"http://127.0.0.1:1\"]\nvendor_public_key = \"{}\"\n\
             state_dir = \"state\"\norganization = \"acme\"\nproduct = \"no-such-product\"\n",
            vendor_key(&s)
        ),
    )
    .unwrap();
    s.clock.set(now());
    let out = ok(
        d,
        &[
            "client",
            "--config",
            "conf/client.toml",
            "--server",
            &s.url,
            "--product",
            "scanner",
            "authorize",
        ],
    );
    assert!(out.contains("authorized by server"), "{out}");
    assert!(
        conf.join("state").is_dir(),
        "state_dir is read from the file's folder"
    );
    assert!(!d.join("state").exists());

    let here = ok(d, &["client", "--config", "conf/client.toml", "status"]);
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let there = ok(
        &elsewhere,
        &["client", "--config", "../conf/client.toml", "status"],
    );
    assert_eq!(device_line(&here), device_line(&there));
    assert!(here.contains("grant for `acme-default`"), "{here}");
    assert!(!elsewhere.join("state").exists());
}

#[test]
fn a_value_missing_from_flags_and_file_is_named() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(d, &["client", "authorize"]);
    assert!(
        err.contains("--server") && err.contains("`servers`"),
        "{err}"
    );
    let err = fails(d, &["client", "--server", &s.url, "status"]);
    assert!(
        err.contains("--vendor-public-key") && err.contains("vendor_public_key"),
        "{err}"
    );
    std::fs::write(
        d.join("partial.toml"),
        format!("servers = [\"{}\"]\nstate_dir = \"s\"\n", s.url),
    )
    .unwrap();
    let key = vendor_key(&s);
    let err = fails(
        d,
        &[
            "client",
            "--config",
            "partial.toml",
            "--vendor-public-key",
            &key,
            "status",
        ],
    );
    assert!(
        err.contains("--product") && err.contains("partial.toml"),
        "{err}"
    );
    let err = fails(d, &["client", "--config", "absent.toml", "status"]);
    assert!(err.contains("absent.toml"), "{err}");
}
