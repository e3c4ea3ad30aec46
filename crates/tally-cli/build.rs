//! Tells the end-to-end tests which outside programs they can use, so that a test that cannot run
//! is reported as *ignored, with the reason* instead of passing without having run:
//!
//! * `has_chromium`: `chromium` and `chromedriver` (Debian's `chromium`, `chromium-driver`) for the
//!   portal's browser test;
//! * `has_aiosmtpd`: `python3` can `import aiosmtpd` (Debian's `python3-aiosmtpd`) for the alert
//!   tests against a real SMTP server;
//! * `has_python_venv`: `python3` can make a virtual environment with pip (Debian's
//!   `python3-venv`) for the Python SDK in `bindings/python`, built and tested in one;
//! * `has_npm`: `node` (Node.js 20.19 or newer) and `npm` for the browser SDK in `bindings/js`
//!   (its build, its node tests, and with `has_chromium` the page in a real browser);
//! * `has_cxx`: a C++ compiler, `c++` (Debian's `g++`), for the C++ example of the C SDK (the C
//!   compiler `cc` is needed to build the workspace anyway);
//! * `has_test_database`: `TALLY_TEST_DATABASE_URL` names a PostgreSQL database the tests may
//!   write to (each test makes a schema of its own and drops it), for `tally migrate`.
//!
//! The programs are looked for in `TALLY_TEST_BIN_DIR` (default `/usr/bin`), which the tests get
//! too. Under CI (`CI` set) every cfg is always on: the tests run, and fail if a program or the
//! database is missing.
//! To see the ignored tests, point the variable at an empty directory (and leave
//! `TALLY_TEST_DATABASE_URL` unset): `TALLY_TEST_BIN_DIR=/nonexistent cargo test -p tally-cli --test it`.

use std::path::Path;
use std::process::{Command, Stdio};

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(has_chromium, has_aiosmtpd, has_python_venv, has_npm, has_cxx, has_test_database)"
    );
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=TALLY_TEST_BIN_DIR");
    println!("cargo::rerun-if-env-changed=TALLY_TEST_DATABASE_URL");
    let dir = std::env::var("TALLY_TEST_BIN_DIR").unwrap_or_else(|_| "/usr/bin".into());
    let bin = Path::new(&dir);
    // Installing or removing a package changes the folder (python3-aiosmtpd adds `aiosmtpd`).
    // A path that does not exist is not watched: Cargo would rerun this script on every build.
    if bin.is_dir() {
        println!("cargo::rerun-if-changed={dir}");
    }
    println!("cargo::rustc-env=TALLY_TEST_BIN_DIR={dir}");

    let ci = std::env::var_os("CI").is_some();
    if ci || (bin.join("chromium").exists() && bin.join("chromedriver").exists()) {
        println!("cargo::rustc-cfg=has_chromium");
    }
    let aiosmtpd = Command::new(bin.join("python3"))
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ci || aiosmtpd {
        println!("cargo::rustc-cfg=has_aiosmtpd");
    }
    // `python3 -m venv` installs pip from `ensurepip`, which Debian ships in python3-venv.
    let venv = Command::new(bin.join("python3"))
        .args(["-c", "import venv, ensurepip; ensurepip.version()"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ci || venv {
        println!("cargo::rustc-cfg=has_python_venv");
    }
    if ci || (bin.join("node").exists() && bin.join("npm").exists()) {
        println!("cargo::rustc-cfg=has_npm");
    }
    if ci || bin.join("c++").exists() {
        println!("cargo::rustc-cfg=has_cxx");
    }
    let database = std::env::var_os("TALLY_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty());
    if ci || database {
        println!("cargo::rustc-cfg=has_test_database");
    }
}
