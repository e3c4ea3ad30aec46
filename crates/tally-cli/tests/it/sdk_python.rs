//! The Python package (`bindings/python`) as a user gets it: pip builds and installs it into a
//! fresh virtual environment, and its pytest suite runs against a real demo server. Needs
//! `python3` with `venv` (`has_python_venv`, see `build.rs`) and PyPI, where pip finds maturin,
//! pytest and mypy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::cli::TALLY;
use crate::processes::{free_port, serve_demo};

/// The repository's folder.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Cargo's target folder this test was built in (`<target>/debug/tally`): the package's build
/// reuses what an earlier run compiled there, wherever `CARGO_TARGET_DIR` put it.
fn target_dir() -> PathBuf {
    let tally = Path::new(TALLY);
    tally.parent().and_then(Path::parent).unwrap().to_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[cfg_attr(
    not(has_python_venv),
    ignore = "needs python3 with venv and pip: apt-get install python3-venv"
)]
fn the_python_package_builds_with_pip_and_passes_its_tests_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repository = repository();
    let python = Path::new(env!("TALLY_TEST_BIN_DIR")).join("python3");
    run(Command::new(python)
        .args(["-m", "venv"])
        .arg(d.join("venv")));
    let venv_python = d.join("venv/bin/python");

    let started = Instant::now();
    run(Command::new(&venv_python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["./bindings/python", "pytest", "mypy"])
        .current_dir(&repository)
        .env("CARGO_TARGET_DIR", target_dir()));
    eprintln!(
        "pip install ./bindings/python pytest mypy: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let _server = serve_demo(d, &listen, &[]);
    let client_config = d.join("data/demo/client.toml");
    let demo: toml::Table =
        toml::from_str(&std::fs::read_to_string(&client_config).unwrap()).unwrap();
    let setting = |key: &str| demo[key].as_str().unwrap().to_owned();
    let token = std::fs::read_to_string(d.join("data/admin-token")).unwrap();

    let out = Command::new(&venv_python)
        .args([
            "-m",
            "pytest",
            "bindings/python/tests",
            "-v",
            "-rs",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(&repository)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("TALLY_TEST_SERVER", format!("http://{listen}"))
        .env("TALLY_TEST_VENDOR_PUBLIC_KEY", setting("vendor_public_key"))
        .env("TALLY_TEST_ORGANIZATION", setting("organization"))
        .env("TALLY_TEST_PRODUCT", setting("product"))
        .env("TALLY_TEST_ADMIN_TOKEN", token.trim())
        .env("TALLY_TEST_CLIENT_CONFIG", &client_config)
        .output()
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{report}");
    assert!(
        !report.contains("SKIPPED"),
        "every test must run here:\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");
}
