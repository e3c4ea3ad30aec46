//! The C ABI end to end. The C and C++ examples of `crates/tally-sdk-c` (the very files the docs
//! show), compiled with the system compilers (`cc`, `c++`) against the static library cargo
//! built, authorize against a real `tally serve --demo`, record and send usage, and the usage
//! shows in the server's statistics. A C program uses one handle from many threads at once and
//! must end with exact counts; another checks the protocol test vectors through the ABI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::processes::{Server, admin, free_port, serve_demo};

/// The C ABI crate: its header, examples and C test programs.
const CRATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tally-sdk-c");

/// What the Rust standard library needs from the system when linked statically into a C
/// program on Linux (as `rustc --print native-static-libs` reports it).
const NATIVE_LIBS: &[&str] = &[
    "-lm",
    "-lrt",
    "-lpthread",
    "-lgcc_s",
    "-lutil",
    "-ldl",
    "-lc",
];

/// `libtally_sdk_c.a`, which cargo builds with this test (a dev-dependency's declared crate
/// types), next to the test binary in `target/<profile>/deps` or in `target/<profile>`.
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let looked = [
        deps.join("libtally_sdk_c.a"),
        deps.parent().unwrap().join("libtally_sdk_c.a"),
    ];
    looked
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the static library of tally-sdk-c is not where cargo puts it: looked at {looked:?} \
                 (it is a dev-dependency of tally-cli, so `cargo test -p tally-cli` builds it)"
            )
        })
}

/// Compiles `source` (a path in the C ABI crate) with `compiler` in the C or C++ `standard`,
/// warnings as errors, linked against the static library; returns the program.
fn compile(compiler: &str, standard: &str, source: &str, out: &Path) -> PathBuf {
    let crate_dir = Path::new(CRATE);
    let output = Command::new(compiler)
        .arg(format!("-std={standard}"))
        .args(["-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join(source))
        .arg(static_library())
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{compiler}` (install gcc and g++): {e}"));
    assert!(
        output.status.success(),
        "{compiler} {source} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_owned()
}

/// A demo server and the client settings it wrote.
struct Demo {
    dir: TempDir,
    listen: String,
    _server: Server,
    server_url: String,
    vendor_public_key: String,
    organization: String,
    product: String,
}

impl Demo {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listen = format!("127.0.0.1:{}", free_port());
        let server = serve_demo(dir.path(), &listen, &[]);
        let config = std::fs::read_to_string(dir.path().join("data/demo/client.toml")).unwrap();
        let config: toml::Table = toml::from_str(&config).unwrap();
        let text = |key: &str| config[key].as_str().unwrap().to_owned();
        Self {
            server_url: config["servers"][0].as_str().unwrap().to_owned(),
            vendor_public_key: text("vendor_public_key"),
            organization: text("organization"),
            product: text("product"),
            listen,
            _server: server,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `program` with the demo's settings, the state directory `state`, and `extra`.
    fn run(&self, program: &Path, state: &str, extra: &[&str]) -> Output {
        Command::new(program)
            .arg(&self.server_url)
            .arg(&self.vendor_public_key)
            .arg(self.path(state))
            .arg(&self.organization)
            .arg(&self.product)
            .args(extra)
            .output()
            .unwrap()
    }

    /// Scans counted by the server on the demo's handshake code, all days together.
    fn scans(&self) -> u64 {
        let table = admin(self.dir.path(), &self.listen, &["stats"]);
        table
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('\t').collect();
                match cells[..] {
                    [_, "demo-default", "scan", count] => count.parse::<u64>().ok(),
                    _ => None,
                }
            })
            .sum()
    }
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs an example as a vendor's product would: authorized, `scans` uses sent and counted; and
/// against a server the configured vendor key does not vouch for: refused with the code and
/// message on standard error.
fn run_example(demo: &Demo, program: &Path, scans: u64) {
    let before = demo.scans();
    let state = format!("{}-device", program.file_name().unwrap().to_string_lossy());
    let out = succeeded(&demo.run(program, &state, &[&scans.to_string()]));
    assert!(out.starts_with("authorized until 20"), "{out}");
    assert!(
        out.contains("usage sent: 1 reports acknowledged, 0 pending"),
        "{out}"
    );
    assert!(out.contains("status: authorized"), "{out}");
    assert_eq!(demo.scans(), before + scans);

    let stranger = tally_crypto::SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_base64();
    let out = Command::new(program)
        .args([&demo.server_url, &stranger])
        .arg(demo.path("stranger-device"))
        .args([&demo.organization, &demo.product])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1007 server_not_trusted: "), "{err}");
    assert!(err.contains(&demo.server_url), "{err}");
    assert_eq!(demo.scans(), before + scans);
}

#[test]
fn the_c_example_authorizes_and_its_usage_reaches_the_server() {
    let demo = Demo::start();
    let program = compile("cc", "c11", "examples/c/minimal.c", &demo.path("minimal-c"));
    run_example(&demo, &program, 3);
}

#[test]
#[cfg_attr(not(has_cxx), ignore = "needs a C++ compiler: c++ (Debian's g++)")]
fn the_cpp_example_authorizes_and_its_usage_reaches_the_server() {
    let demo = Demo::start();
    let program = compile(
        "c++",
        "c++17",
        "examples/cpp/minimal.cpp",
        &demo.path("minimal-cpp"),
    );
    run_example(&demo, &program, 4);
}

#[test]
fn one_handle_used_by_many_threads_at_once_counts_every_use_once() {
    let demo = Demo::start();
    let program = compile("cc", "c11", "tests/c/threads.c", &demo.path("threads"));
    let (threads, records) = (8, 25);
    let out = succeeded(&demo.run(
        &program,
        "threads-device",
        &[&threads.to_string(), &records.to_string()],
    ));
    assert!(out.contains("none pending"), "{out}");
    assert_eq!(demo.scans(), threads * records);
}

#[test]
fn the_c_abi_checks_the_protocol_test_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(
        "cc",
        "c11",
        "tests/c/vectors.c",
        &dir.path().join("vectors"),
    );
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sdk/test-vectors.json"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let cases = tally_sdk::conformance::check_test_vectors(&text).unwrap();
    let out = Command::new(&program).arg(file).output().unwrap();
    assert_eq!(succeeded(&out), format!("checked {cases} cases\n"));

    // A vector changed: the checker names the case.
    let changed = dir.path().join("changed.json");
    let mut vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    vectors["report_session"]["request"]["seq"] = serde_json::json!(7);
    std::fs::write(&changed, vectors.to_string()).unwrap();
    let out = Command::new(&program).arg(&changed).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("306 invalid_input: test vector `report_session.request`"),
        "{err}"
    );
}
