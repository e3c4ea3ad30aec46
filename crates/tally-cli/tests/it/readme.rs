//! The README's commands, run as written. Every ```sh block of README.md runs, in order, with
//! `bash -euo pipefail` in one empty directory where the demo server was started as the first of
//! the two commands says (`cargo run -- serve --demo` is `tally serve --demo`; only the listening
//! port is a free one, given to the admin commands by `TALLY_SERVER`), with this build's `tally`
//! first on the `PATH` as the README's setup line puts it. A block preceded by a line
//! `<!-- not run by the README test: REASON -->` is skipped: the test suite itself, the
//! benchmark, a server in the foreground. The demo's "try:" hint must stand in the README word
//! for word.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TALLY: &str = env!("CARGO_BIN_EXE_tally");
const SKIP: &str = "<!-- not run by the README test:";

/// A fenced block of the README: its first line number, whether it is skipped, its text.
struct Block {
    line: usize,
    skip: Option<String>,
    text: String,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut previous = "";
    let mut open: Option<Block> = None;
    for (n, line) in readme.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if let Some(mut block) = open.take() {
            if fence {
                out.push(block);
            } else {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some(block);
            }
        } else if line.trim_start() == "```sh" {
            open = Some(Block {
                line: n + 1,
                skip: previous
                    .trim()
                    .strip_prefix(SKIP)
                    .map(|r| r.trim_end_matches("-->").trim().to_owned()),
                text: String::new(),
            });
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    out
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_demo(dir: &Path, listen: &str) -> (Server, String) {
    let log = dir.join("serve.log");
    let server = Server(
        Command::new(TALLY)
            .args(["serve", "--demo", "--listen", listen])
            .current_dir(dir)
            .env("TALLY_HARDWARE_LABELS", "[\"machine-id\"]")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Tally server listening") && std::net::TcpStream::connect(listen).is_ok() {
            return (server, text);
        }
        assert!(Instant::now() < deadline, "the demo did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_command_of_the_readme_runs_as_written() {
    let readme = include_str!("../../../../README.md");
    let blocks = blocks(readme);
    assert!(
        blocks.len() >= 5,
        "the README's shell blocks were not found"
    );
    let first = &blocks[0];
    assert_eq!(first.text.trim(), "cargo run -- serve --demo");
    assert!(
        blocks[1].text.trim() == "cargo test --workspace",
        "the second command runs the tests"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let (_server, log) = start_demo(dir.path(), &listen);

    // The demo's hint is the README's.
    let hint: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("try:"))
        .map(|l| l.trim().trim_start_matches("try:").trim())
        .take_while(|l| l.starts_with("tally "))
        .collect();
    assert_eq!(hint.len(), 3, "{log}");
    for line in hint {
        assert!(
            readme.lines().any(|l| l.trim() == line),
            "the demo suggests `{line}`, which the README does not show"
        );
    }

    let bin = Path::new(TALLY).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for block in blocks.iter().skip(2) {
        if let Some(reason) = &block.skip {
            assert!(!reason.is_empty(), "README line {}: say why", block.line);
            continue;
        }
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block.text])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("TALLY_SERVER", format!("http://{listen}"))
            .env("TALLY_HARDWARE_LABELS", "[\"machine-id\"]")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block at line {} failed:\n{}\n--- stdout\n{}\n--- stderr\n{}",
            block.line,
            block.text,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 2, "only {ran} README blocks ran");
}
