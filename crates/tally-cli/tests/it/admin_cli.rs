//! `tally admin` as a newcomer meets it, the real binary against a real server: validation
//! fields edited one list at a time, empty lists, output cut by the reader, and the server and
//! token read from the environment or a configuration file.

use std::path::Path;
use std::process::{Command, Stdio};

use tally_proto::admin::{HandshakeView, ValidationRules};

use crate::cli::{command, fails, fails_with, ok, succeeds};
use crate::common::{TestServer, per_device};

/// `tally admin --server … --token … args` in `dir`.
fn admin(s: &TestServer, dir: &Path, args: &[&str]) -> Command {
    let token = s.token();
    let mut all = vec!["admin", "--server", &s.url, "--token", &token];
    all.extend_from_slice(args);
    command(dir, &all)
}

/// A server with organization `acme`'s license imported; its default code is `acme-default`.
fn server_with_license() -> TestServer {
    let s = TestServer::start();
    s.import(&s.activated("L-1", "acme", vec![per_device("I-1", "scanner", 5, 0)]));
    s
}

fn rules_of(s: &TestServer, code: &str) -> ValidationRules {
    let h: HandshakeView = s.admin_ok("GET", &format!("/handshakes/{code}"), None);
    h.validation
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn update_handshake_adds_to_or_replaces_one_validation_list_and_keeps_the_others() {
    let s = server_with_license();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let code = "acme-default";
    let update = |args: &[&str]| {
        succeeds(&mut admin(
            &s,
            d,
            &[&["update-handshake", code], args].concat(),
        ))
    };

    let out = update(&["--domain", "a.example", "--domain", "*.b.example"]);
    assert!(out.contains("domains    a.example, *.b.example"), "{out}");
    assert!(out.contains("app ids    any"), "{out}");

    // The bug of the issue: --app-id used to drop the domains set before.
    let out = update(&["--app-id", "com.acme.scanner"]);
    assert!(out.contains("domains    a.example, *.b.example"), "{out}");
    assert!(out.contains("app ids    com.acme.scanner"), "{out}");

    let out = update(&["--add-domain", "c.example", "--add-process", "scan.exe"]);
    assert!(
        out.contains("domains    a.example, *.b.example, c.example"),
        "{out}"
    );
    assert!(out.contains("processes  scan.exe"), "{out}");
    assert_eq!(
        rules_of(&s, code),
        ValidationRules {
            domains: strings(&["a.example", "*.b.example", "c.example"]),
            app_ids: strings(&["com.acme.scanner"]),
            process_names: strings(&["scan.exe"]),
        }
    );

    // Replacing one list and adding to another in one call; the third stays.
    update(&["--domain", "only.example", "--add-app-id", "com.acme.two"]);
    assert_eq!(
        rules_of(&s, code),
        ValidationRules {
            domains: strings(&["only.example"]),
            app_ids: strings(&["com.acme.scanner", "com.acme.two"]),
            process_names: strings(&["scan.exe"]),
        }
    );

    // Replace and add on the same list is ambiguous: refused before any request.
    let err = fails_with(&mut admin(
        &s,
        d,
        &[
            "update-handshake",
            code,
            "--domain",
            "x.example",
            "--add-domain",
            "y.example",
        ],
    ));
    assert!(err.contains("cannot be used with"), "{err}");
    assert_eq!(rules_of(&s, code).domains, strings(&["only.example"]));

    // A change that leaves validation alone keeps it and still shows it.
    let out = update(&["--disable"]);
    assert!(
        out.contains("DISABLED") && out.contains("domains    only.example"),
        "{out}"
    );

    let out = update(&["--no-validation"]);
    for field in ["domains    any", "app ids    any", "processes  any"] {
        assert!(out.contains(field), "{out}");
    }
    assert_eq!(rules_of(&s, code), ValidationRules::default());
}

#[test]
fn empty_lists_print_their_header_and_say_they_are_empty() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (args, header, empty) in [
        (
            &["alerts"][..],
            "time\tsubject\temail\twebhooks",
            "no alerts yet",
        ),
        (
            &["handshakes"],
            "code\torganization\titems",
            "no handshake codes yet",
        ),
        (&["devices"], "device\titem\tcode\tname", "no devices yet"),
        (&["items"], "item\ttype\tproduct", "no license items yet"),
        (
            &["stats"],
            "day\tcode\tfeature\tcount",
            "no usage reported yet",
        ),
    ] {
        let out = succeeds(&mut admin(&s, dir.path(), args));
        let mut lines = out.lines();
        assert!(
            lines.next().is_some_and(|l| l.starts_with(header)),
            "{args:?}: {out}"
        );
        assert!(
            lines.next().is_some_and(|l| l.starts_with(empty)),
            "{args:?}: {out}"
        );
    }
    let out = succeeds(&mut admin(&s, dir.path(), &["stats", "--code", "nope"]));
    assert!(out.contains("no usage matches these filters"), "{out}");
    // JSON stays a plain (empty) array for scripts.
    let out = succeeds(&mut admin(&s, dir.path(), &["--json", "alerts"]));
    assert_eq!(out.trim(), "[]");
}

/// Runs `cmd` with a standard output whose reader is already gone, as after `| head -1` stops
/// reading: every write fails with a broken pipe.
fn with_closed_stdout(cmd: &mut Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn output_cut_by_its_reader_ends_the_command_quietly() {
    let s = server_with_license();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["--json", "handshakes"][..],
        &["handshakes"],
        &["items"],
        &["status"],
    ] {
        let out = with_closed_stdout(&mut admin(&s, d, args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let out = with_closed_stdout(&mut command(d, &["error-codes"]));
    assert!(out.stderr.is_empty() && out.status.success(), "{out:?}");
    // The vendor's tools write through their own writer; the same quiet end.
    let out = with_closed_stdout(&mut command(d, &["vendor", "keygen", "--out", "v.key"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("error") && !stderr.contains("panic"),
        "{out:?}"
    );
    assert!(d.join("v.key").exists());

    // As a user types it.
    let script = format!(
        "set -o pipefail; '{}' admin --server '{}' --token '{}' --json handshakes | head -1",
        crate::cli::TALLY,
        s.url,
        s.token()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn admin_reads_its_server_and_token_from_the_environment_or_a_config_file() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = s.token();
    let data_dir = s.data.path().to_str().unwrap().to_owned();
    let dead = "http://127.0.0.1:1";

    // Nothing given: the error says how to give a token.
    let err = fails(d, &["admin", "status"]);
    assert!(
        err.contains("--token") && err.contains("TALLY_ADMIN_TOKEN"),
        "{err}"
    );

    // The environment.
    let out = succeeds(
        command(d, &["admin", "status"])
            .env("TALLY_SERVER", &s.url)
            .env("TALLY_ADMIN_TOKEN", &token),
    );
    assert!(out.contains("identity ok"), "{out}");
    succeeds(
        command(d, &["admin", "status"])
            .env("TALLY_SERVER", &s.url)
            .env("TALLY_DATA_DIR", &data_dir),
    );
    // A flag beats the environment.
    succeeds(
        command(d, &["admin", "--server", &s.url, "status"])
            .env("TALLY_SERVER", dead)
            .env("TALLY_ADMIN_TOKEN", &token),
    );

    // A file named by --config, used from another directory: its data_dir is read from its
    // own folder.
    let conf = d.join("conf");
    std::fs::create_dir_all(conf.join("srv")).unwrap();
    std::fs::write(conf.join("srv/admin-token"), format!("{token}\n")).unwrap();
    std::fs::write(
        conf.join("admin.toml"),
        format!("server = \"{}\"\ndata_dir = \"srv\"\n", s.url),
    )
    .unwrap();
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    ok(
        &elsewhere,
        &["admin", "--config", "../conf/admin.toml", "status"],
    );
    // Global flags may follow the subcommand.
    ok(
        &elsewhere,
        &["admin", "status", "--config", "../conf/admin.toml"],
    );
    let err = fails(d, &["admin", "--config", "missing.toml", "status"]);
    assert!(
        err.contains("missing.toml") && err.contains("does not exist"),
        "{err}"
    );

    // ./tally-admin.toml; flags beat its keys, and a typed --data-dir beats its token.
    std::fs::write(
        elsewhere.join("tally-admin.toml"),
        format!("server = \"{dead}\"\ntoken = \"not-the-token\"\n"),
    )
    .unwrap();
    let err = fails(&elsewhere, &["admin", "status"]);
    assert!(err.contains("cannot reach"), "{err}");
    ok(
        &elsewhere,
        &[
            "admin",
            "--server",
            &s.url,
            "--data-dir",
            &data_dir,
            "status",
        ],
    );
    let err = fails(&elsewhere, &["admin", "--server", &s.url, "status"]);
    assert!(err.contains("refused"), "{err}");

    // $XDG_CONFIG_HOME/tally/admin.toml when the current directory has none.
    let xdg = d.join("xdg");
    std::fs::create_dir_all(xdg.join("tally")).unwrap();
    std::fs::write(
        xdg.join("tally/admin.toml"),
        format!("server = \"{}\"\ntoken = \"{token}\"\n", s.url),
    )
    .unwrap();
    succeeds(command(d, &["admin", "status"]).env("XDG_CONFIG_HOME", &xdg));
    let err = fails_with(command(d, &["admin", "status"]).env("XDG_CONFIG_HOME", d.join("none")));
    assert!(err.contains("no admin token"), "{err}");
}
