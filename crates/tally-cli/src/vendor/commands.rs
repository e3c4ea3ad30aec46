//! What each vendor command does. Every input is read and checked before anything is written,
//! and results go to `out` (stdout) while notes and warnings go to `err` (stderr), so that
//! scripts can capture results and tests can check both exactly.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use tally_crypto::document::{DocumentKind, activate_for_servers, issue_license, verify_license};
use tally_crypto::keys::{
    EncryptionPublicKey, VENDOR_KEY_HEADER, parse_vendor_key_file, vendor_key_file,
};
use tally_crypto::{CryptoError, SigningKey, VerifyingKey};
use tally_proto::UnixSeconds;
use tally_proto::license::{
    ACTIVATION_REQUEST_FORMAT, ActivationRequest, LICENSE_FORMAT, License, MAX_ACTIVATED_SERVERS,
    Organization, ServerPublicIdentity,
};

use super::fsio::{Access, Existing, write_atomic};
use super::summary::{Document, Trust, payload_text};
use super::{
    ActivateArgs, InspectArgs, IssueArgs, KeygenArgs, VendorCommand, VerifyArgs, dates, item_spec,
};

/// Runs one command.
pub fn execute(
    cmd: VendorCommand,
    now: UnixSeconds,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        VendorCommand::Keygen(args) => keygen(args, out, err),
        VendorCommand::Issue(args) => issue(args, now, out, err),
        VendorCommand::Activate(args) => activate(args, now, out, err),
        VendorCommand::Inspect(args) => inspect(args, out, err),
        VendorCommand::Verify(args) => verify(args, out, err),
    }
}

fn keygen(args: KeygenArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    if args.public_out.as_ref() == Some(&args.out) {
        bail!("--public-out must name another file than --out");
    }
    // Checked early for a clear message; the write itself refuses atomically too.
    if !args.force && fs::symlink_metadata(&args.out).is_ok() {
        bail!(
            "{} already exists; use --force to replace it (licenses signed with the old key \
             will then no longer verify)",
            args.out.display()
        );
    }
    if let Some(public_out) = &args.public_out {
        refuse_to_overwrite_a_key(public_out)?;
    }
    let key = SigningKey::generate().context("cannot generate the vendor key")?;
    let public = key.verifying_key().to_base64();
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    write_atomic(
        &args.out,
        vendor_key_file(&key).as_bytes(),
        Access::Private,
        existing,
    )?;
    // Only the public key on stdout, so that `PUBLIC=$(tally vendor keygen …)` works.
    writeln!(out, "{public}")?;
    writeln!(
        err,
        "vendor secret key written to {} (mode 0600; keep it private and backed up)",
        args.out.display()
    )?;
    if let Some(public_out) = &args.public_out {
        write_atomic(
            public_out,
            format!("{public}\n").as_bytes(),
            Access::Shared,
            Existing::Replace,
        )?;
        writeln!(err, "public key written to {}", public_out.display())?;
    }
    Ok(())
}

fn issue(
    args: IssueArgs,
    now: UnixSeconds,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let key = load_signing_key(&args.key, err)?;
    let org_id = not_empty("--org-id", &args.org_id)?;
    let org_name = not_empty("--org-name", &args.org_name)?;
    let alias = not_empty("--alias", &args.alias)?;
    let license_id = match &args.license_id {
        Some(id) => {
            let id = not_empty("--license-id", id)?;
            if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("--license-id `{id}` must not contain spaces");
            }
            id
        }
        None => format!("L-{}", uuid::Uuid::new_v4().simple()),
    };
    let mut raws = Vec::new();
    for (i, spec) in args.item.iter().enumerate() {
        raws.push(item_spec::parse_spec(spec, i + 1).map_err(|e| anyhow!(e))?);
    }
    if let Some(path) = &args.items_file {
        let text = read_text(path)?;
        raws.extend(
            item_spec::parse_toml(&text, &path.display().to_string()).map_err(|e| anyhow!(e))?,
        );
    }
    let items = item_spec::build_all(&raws, &license_id).map_err(|e| anyhow!(e))?;
    let license = License {
        format: LICENSE_FORMAT.to_owned(),
        license_id,
        organization: Organization {
            id: org_id,
            name: org_name,
        },
        alias,
        issued_at: now,
        items,
    };
    let text = issue_license(&license, &key).context("cannot sign the license")?;
    refuse_to_overwrite_a_key(&args.out)?;
    write_atomic(
        &args.out,
        text.as_bytes(),
        Access::Shared,
        Existing::Replace,
    )?;
    for item in license.items.iter().filter(|i| i.end <= now) {
        writeln!(
            err,
            "warning: item {} has already ended ({})",
            item.id,
            dates::show(item.end)
        )?;
    }
    writeln!(
        out,
        "issued license {} for {} ({} item{}) to {}",
        license.license_id,
        license.organization.name,
        license.items.len(),
        if license.items.len() == 1 { "" } else { "s" },
        args.out.display()
    )?;
    Ok(())
}

fn activate(
    args: ActivateArgs,
    now: UnixSeconds,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let key = load_signing_key(&args.key, err)?;
    let text = read_text(&args.license)?;
    if DocumentKind::detect(&text) == Some(DocumentKind::ActivatedLicense) {
        bail!(
            "{} is already an activated license file; activate the issued license file instead",
            args.license.display()
        );
    }
    let license = verify_license(&text, &key.verifying_key()).map_err(|e| match e {
        CryptoError::BadSignature => anyhow!(
            "{} was not issued with the vendor key {} (or was altered since): {e}",
            args.license.display(),
            args.key.display()
        ),
        other => anyhow!(other).context(format!(
            "{} is not a valid license file",
            args.license.display()
        )),
    })?;
    let requests = read_requests(&args.request)?;
    let servers: Vec<ServerPublicIdentity> =
        requests.iter().map(|(_, r)| r.server.clone()).collect();
    let activated = activate_for_servers(&text, &servers, &key, now)
        .with_context(|| format!("cannot activate {}", args.license.display()))?;
    refuse_to_overwrite_a_key(&args.out)?;
    write_atomic(
        &args.out,
        activated.as_bytes(),
        Access::Shared,
        Existing::Replace,
    )?;
    match requests.as_slice() {
        [(_, request)] => writeln!(
            out,
            "activated license {} for server {} to {}",
            license.license_id,
            request.server.uuid,
            args.out.display()
        )?,
        several => {
            writeln!(
                out,
                "activated license {} for {} servers to {}",
                license.license_id,
                several.len(),
                args.out.display()
            )?;
            for (path, request) in several {
                writeln!(
                    out,
                    "  server {} (from {})",
                    request.server.uuid,
                    path.display()
                )?;
            }
        }
    }
    Ok(())
}

/// Reads every activation request and refuses a set the vendor could not vouch for: more than
/// [`MAX_ACTIVATED_SERVERS`], or one server (UUID or key) twice.
fn read_requests(paths: &[PathBuf]) -> anyhow::Result<Vec<(&Path, ActivationRequest)>> {
    if paths.len() > MAX_ACTIVATED_SERVERS {
        bail!(
            "a license can be activated for at most {MAX_ACTIVATED_SERVERS} servers at once \
             (--request given {} times)",
            paths.len()
        );
    }
    let mut requests: Vec<(&Path, ActivationRequest)> = Vec::with_capacity(paths.len());
    for path in paths {
        let request = read_request(path)?;
        for (earlier_path, earlier) in &requests {
            let (a, b) = (&earlier.server, &request.server);
            let same = if a.uuid == b.uuid {
                format!("the same server UUID {}", b.uuid)
            } else if a.signing_key == b.signing_key {
                "the same signing key".to_owned()
            } else if a.encryption_key == b.encryption_key {
                "the same encryption key".to_owned()
            } else {
                continue;
            };
            bail!(
                "{} and {} name {same}: each server instance must send its own activation \
                 request (its own data directory, on its own machine or with other hardware \
                 labels)",
                earlier_path.display(),
                path.display()
            );
        }
        requests.push((path.as_path(), request));
    }
    Ok(requests)
}

/// Reads an activation request, checking its format and keys so that a mistake is reported
/// against the request file rather than as a failure inside the activation.
fn read_request(path: &Path) -> anyhow::Result<ActivationRequest> {
    let text = read_text(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON (expected the activation request printed by `tally identity`)",
            path.display()
        )
    })?;
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(ACTIVATION_REQUEST_FORMAT) => {}
        Some(other) => bail!(
            "{}: unsupported activation request format `{other}` (expected \
             `{ACTIVATION_REQUEST_FORMAT}`)",
            path.display()
        ),
        None => bail!(
            "{} is not an activation request (it has no `format` field)",
            path.display()
        ),
    }
    let request: ActivationRequest = serde_json::from_value(value)
        .with_context(|| format!("{} is not a valid activation request", path.display()))?;
    if request.server.uuid.trim().is_empty() {
        bail!("{}: the server uuid is empty", path.display());
    }
    VerifyingKey::from_base64(&request.server.signing_key)
        .with_context(|| format!("{}: invalid server signing key", path.display()))?;
    EncryptionPublicKey::from_base64(&request.server.encryption_key)
        .with_context(|| format!("{}: invalid server encryption key", path.display()))?;
    Ok(request)
}

fn inspect(args: InspectArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let key = trusted_key(
        args.vendor_public.as_deref(),
        args.vendor_key.as_deref(),
        err,
    )?;
    let text = read_text(&args.file)?;
    let file = args.file.display();
    let (document, trust) = match &key {
        Some(key) => (
            Document::verify(&text, key).with_context(|| format!("{file} did not verify"))?,
            Trust::Verified,
        ),
        None if args.json => {
            // The raw payload is shown even if this tool does not understand it.
            tally_crypto::document::read_unverified(&text)
                .with_context(|| format!("cannot read {file}"))?;
            let payload = payload_text(&text).with_context(|| format!("cannot read {file}"))?;
            writeln!(out, "{payload}")?;
            writeln!(err, "{}", Trust::Unchecked.status())?;
            return Ok(());
        }
        None => (
            Document::read_unverified(&text).with_context(|| format!("cannot read {file}"))?,
            Trust::Unchecked,
        ),
    };
    if args.json {
        let payload = payload_text(&text).with_context(|| format!("cannot read {file}"))?;
        writeln!(out, "{payload}")?;
        writeln!(err, "{}: {}", document.kind().description(), trust.status())?;
    } else {
        write!(out, "{}", document.describe(trust))?;
    }
    Ok(())
}

fn verify(args: VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let key = trusted_key(
        args.vendor_public.as_deref(),
        args.vendor_key.as_deref(),
        err,
    )?
    .context("give the vendor key: --vendor-public KEY or --vendor-key FILE")?;
    let text = read_text(&args.file)?;
    let document = Document::verify(&text, &key)
        .with_context(|| format!("{} did not verify", args.file.display()))?;
    writeln!(out, "OK: {}", document.headline())?;
    Ok(())
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn not_empty(flag: &str, value: &str) -> anyhow::Result<String> {
    let value = value.trim();
    if value.is_empty() {
        bail!("{flag} must not be empty");
    }
    Ok(value.to_owned())
}

/// Loads the vendor secret key, warning when other users can read it.
fn load_signing_key(path: &Path, err: &mut dyn Write) -> anyhow::Result<SigningKey> {
    let key = parse_vendor_key_file(&read_text(path)?)
        .with_context(|| format!("{} is not a usable vendor key file", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            writeln!(
                err,
                "warning: the vendor key {} can be read by other users (mode {:o}); \
                 run `chmod 600` on it",
                path.display(),
                meta.permissions().mode() & 0o777
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = err;
    Ok(key)
}

/// The vendor public key to check signatures against, if one was given.
fn trusted_key(
    vendor_public: Option<&str>,
    vendor_key: Option<&Path>,
    err: &mut dyn Write,
) -> anyhow::Result<Option<VerifyingKey>> {
    match (vendor_public, vendor_key) {
        (Some(text), _) => VerifyingKey::from_base64(text).map(Some).map_err(|e| {
            let hint = if Path::new(text).is_file() {
                " (it names a file: pass the key itself, e.g. --vendor-public \"$(cat FILE)\")"
            } else {
                ""
            };
            anyhow!("--vendor-public is not a vendor public key{hint}: {e}")
        }),
        (None, Some(path)) => Ok(Some(load_signing_key(path, err)?.verifying_key())),
        (None, None) => Ok(None),
    }
}

/// A mistyped `--out` must never destroy the vendor key: it cannot be recovered.
fn refuse_to_overwrite_a_key(path: &Path) -> anyhow::Result<()> {
    if let Ok(text) = fs::read_to_string(path)
        && text.starts_with(VENDOR_KEY_HEADER)
    {
        bail!(
            "refusing to overwrite {}: it is a vendor secret key file",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tally_crypto::EncryptionKeyPair;
    use tally_crypto::document::verify_activated;
    use tally_proto::license::{ActiveWindow, LicenseType};

    /// 2026-03-01 12:00:00 UTC.
    const NOW: UnixSeconds = 1_772_366_400;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: VendorCommand,
    }

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }

        fn path(&self, name: &str) -> String {
            self.0.path().join(name).display().to_string()
        }

        fn read(&self, name: &str) -> String {
            fs::read_to_string(self.0.path().join(name)).unwrap()
        }

        fn write(&self, name: &str, text: &str) {
            fs::write(self.0.path().join(name), text).unwrap();
        }

        fn exists(&self, name: &str) -> bool {
            self.0.path().join(name).exists()
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(self.0.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }

        /// `tally vendor ARGS…`: stdout and stderr, or the error as `main` prints it.
        fn vendor(&self, args: &[&str]) -> Result<(String, String), String> {
            let cli = Cli::try_parse_from(std::iter::once("vendor").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
            let (mut out, mut err) = (Vec::new(), Vec::new());
            execute(cli.cmd, NOW, &mut out, &mut err).map_err(|e| format!("{e:#}"))?;
            Ok((
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            ))
        }

        fn ok(&self, args: &[&str]) -> String {
            match self.vendor(args) {
                Ok((out, _)) => out,
                Err(e) => panic!("vendor {args:?} failed: {e}"),
            }
        }

        fn fails(&self, args: &[&str]) -> String {
            match self.vendor(args) {
                Ok((out, _)) => panic!("vendor {args:?} unexpectedly succeeded: {out}"),
                Err(e) => e,
            }
        }

        /// A vendor key at `name`; returns its public key.
        fn keygen(&self, name: &str) -> String {
            self.ok(&["keygen", "--out", &self.path(name)])
                .trim()
                .to_owned()
        }

        fn issue(&self, extra: &[&str]) -> Result<(String, String), String> {
            let (key, out) = (self.path("vendor.key"), self.path("acme.license"));
            let mut args = vec!["issue"];
            args.extend_from_slice(extra);
            // Defaults for the flags a test does not give itself.
            for (flag, value) in [
                ("--key", key.as_str()),
                ("--org-id", "1001"),
                ("--org-name", "Acme Corp"),
                ("--alias", "Acme 2026"),
                ("--out", out.as_str()),
            ] {
                if !extra.contains(&flag) {
                    args.extend([flag, value]);
                }
            }
            self.vendor(&args)
        }
    }

    const ITEM: &str = "product=scanner,type=per-device,quantity=5,start=2026-01-01,\
                        end=2027-01-01,modules=qr+pdf417";

    fn request() -> ActivationRequest {
        ActivationRequest {
            format: ACTIVATION_REQUEST_FORMAT.into(),
            server: ServerPublicIdentity {
                uuid: "0f8e5c1a-server-uuid".into(),
                signing_key: SigningKey::generate().unwrap().verifying_key().to_base64(),
                encryption_key: EncryptionKeyPair::generate().unwrap().public().to_base64(),
            },
            labels: vec!["machine-id".into()],
        }
    }

    #[test]
    fn keygen_writes_a_private_key_once_and_prints_its_public_half() {
        let d = Dir::new();
        let (out, err) = d
            .vendor(&[
                "keygen",
                "--out",
                &d.path("vendor.key"),
                "--public-out",
                &d.path("vendor.pub"),
            ])
            .unwrap();
        let key = parse_vendor_key_file(&d.read("vendor.key")).unwrap();
        let public = key.verifying_key().to_base64();
        assert_eq!(out, format!("{public}\n"));
        assert!(
            err.contains("vendor.key") && err.contains("vendor.pub"),
            "{err}"
        );
        assert_eq!(d.read("vendor.pub"), format!("{public}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.path("vendor.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let err = d.fails(&["keygen", "--out", &d.path("vendor.key")]);
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(d.keygen("vendor.key.2").len(), 44);
        let err = d.fails(&[
            "keygen",
            "--out",
            &d.path("k"),
            "--public-out",
            &d.path("k"),
        ]);
        assert!(err.contains("--public-out"), "{err}");
        let err = d.fails(&[
            "keygen",
            "--out",
            &d.path("k"),
            "--public-out",
            &d.path("vendor.key"),
        ]);
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert!(!d.exists("k"));

        let replaced = d.ok(&["keygen", "--out", &d.path("vendor.key"), "--force"]);
        assert_ne!(replaced.trim(), public);
        assert_eq!(d.entries(), ["vendor.key", "vendor.key.2", "vendor.pub"]);
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let d = Dir::new();
        let public = d.keygen("vendor.key");
        d.write(
            "items.toml",
            "[[item]]\nproduct = \"viewer\"\ntype = \"per-usage\"\nquantity = 1000\n\
             start = 2026-01-01\nend = 2026-07-01\nmetric = \"view\"\n",
        );
        let items = d.path("items.toml");
        let (out, err) = d
            .issue(&[
                "--license-id",
                "L-ACME",
                "--item",
                ITEM,
                "--item",
                "product=scanner,type=concurrent-device,quantity=2,start=2026-01-01,\
                 end=2027-01-01,versions=2-3,grace=0,window=24h,id=EXTRA",
                "--items",
                &items,
            ])
            .unwrap();
        assert!(
            out.contains("issued license L-ACME for Acme Corp (3 items)"),
            "{out}"
        );
        assert_eq!(err, "");

        let key = parse_vendor_key_file(&d.read("vendor.key")).unwrap();
        let license = verify_license(&d.read("acme.license"), &key.verifying_key()).unwrap();
        assert_eq!(license.format, LICENSE_FORMAT);
        assert_eq!(license.issued_at, NOW);
        assert_eq!(license.organization.id, "1001");
        assert_eq!(license.alias, "Acme 2026");
        let ids: Vec<&str> = license.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["L-ACME-1", "EXTRA", "L-ACME-3"]);
        assert_eq!(license.items[0].modules, ["qr", "pdf417"]);
        assert_eq!(license.items[0].active_window, ActiveWindow::Days365);
        assert_eq!(license.items[1].license_type, LicenseType::ConcurrentDevice);
        assert_eq!(license.items[1].active_window, ActiveWindow::Hours24);
        assert_eq!(license.items[2].metric.as_deref(), Some("view"));

        let file = d.path("acme.license");
        let expected = "OK: license file L-ACME for Acme Corp (org 1001)\n";
        assert_eq!(
            d.ok(&["verify", &file, "--vendor-public", &public]),
            expected
        );
        let key_file = d.path("vendor.key");
        assert_eq!(
            d.ok(&["verify", &file, "--vendor-key", &key_file]),
            expected
        );
    }

    #[test]
    fn the_default_license_id_is_random_and_items_are_numbered_from_it() {
        let d = Dir::new();
        d.keygen("vendor.key");
        d.issue(&["--item", ITEM]).unwrap();
        let (_, value) = tally_crypto::document::read_unverified(&d.read("acme.license")).unwrap();
        let id = value["license_id"].as_str().unwrap();
        let hex = id.strip_prefix("L-").unwrap();
        assert!(
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(value["items"][0]["id"], format!("{id}-1"));
    }

    #[test]
    fn bad_input_writes_nothing() {
        let d = Dir::new();
        d.keygen("vendor.key");
        d.write(
            "dup.toml",
            &format!("[[item]]\nid = \"L-X-1\"\n{}", toml_item()),
        );
        d.write("bad.toml", "[[item]]\nproduct = 5\n");
        d.write("not-a-key", "hello\n");
        let (dup, bad) = (d.path("dup.toml"), d.path("bad.toml"));
        let missing = d.path("missing.toml");
        let not_a_key = d.path("not-a-key");
        let quantity_0 = ITEM.replace("quantity=5", "quantity=0");
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["--item", &quantity_0],
                "--item #1: `quantity` must be at least 1",
            ),
            (vec![], "at least one item"),
            (
                vec!["--item", ITEM, "--org-id", " "],
                "--org-id must not be empty",
            ),
            (
                vec!["--item", ITEM, "--alias", ""],
                "--alias must not be empty",
            ),
            (vec!["--item", ITEM, "--license-id", "a b"], "--license-id"),
            (
                vec!["--license-id", "L-X", "--item", ITEM, "--items", &dup],
                "item id `L-X-1` is already used by --item #1",
            ),
            (
                vec!["--items", &bad],
                "bad.toml [[item]] #1: `product` must be a string",
            ),
            (vec!["--items", &missing], "cannot read"),
            (
                vec!["--item", ITEM, "--key", &not_a_key],
                "not a usable vendor key file",
            ),
        ];
        for (extra, needle) in cases {
            let err = d.issue(&extra).unwrap_err();
            assert!(err.contains(needle), "{extra:?}: {err}");
            assert!(!d.exists("acme.license"), "{extra:?} wrote a file");
        }
        // A mistyped --out never destroys the vendor key.
        let key = d.path("vendor.key");
        let err = d.issue(&["--item", ITEM, "--out", &key]).unwrap_err();
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert!(parse_vendor_key_file(&d.read("vendor.key")).is_ok());
        assert_eq!(
            d.entries(),
            ["bad.toml", "dup.toml", "not-a-key", "vendor.key"]
        );
    }

    fn toml_item() -> &'static str {
        "product = \"p\"\ntype = \"per-device\"\nquantity = 1\nstart = 2026-01-01\n\
         end = 2027-01-01\n"
    }

    #[test]
    fn a_tampered_or_foreign_file_fails_verification() {
        let d = Dir::new();
        let public = d.keygen("vendor.key");
        let other = d.keygen("other.key");
        d.issue(&["--license-id", "L-ACME", "--item", ITEM])
            .unwrap();
        d.write(
            "tampered.license",
            &d.read("acme.license").replacen("scanner", "scannes", 1),
        );
        let tampered = d.path("tampered.license");
        let err = d.fails(&["verify", &tampered, "--vendor-public", &public]);
        assert!(err.contains("tampered.license did not verify"), "{err}");
        assert!(
            err.contains(
                "signature verification failed: the document was altered or not signed by this key"
            ),
            "{err}"
        );
        let good = d.path("acme.license");
        let err = d.fails(&["verify", &good, "--vendor-public", &other]);
        assert!(err.contains("signature verification failed"), "{err}");
        let err = d.fails(&["inspect", &tampered, "--vendor-public", &public]);
        assert!(err.contains("signature verification failed"), "{err}");
        let err = d.fails(&["verify", &good, "--vendor-public", "not-a-key"]);
        assert!(
            err.contains("--vendor-public is not a vendor public key"),
            "{err}"
        );
        let err = d.fails(&["verify", &d.path("vendor.key"), "--vendor-public", &public]);
        assert!(err.contains("not a Tally license file"), "{err}");
    }

    #[test]
    fn activate_binds_the_license_to_the_requesting_server() {
        let d = Dir::new();
        let public = d.keygen("vendor.key");
        d.issue(&["--license-id", "L-ACME", "--item", ITEM])
            .unwrap();
        let request = request();
        d.write(
            "request.json",
            &serde_json::to_string_pretty(&request).unwrap(),
        );
        let (key, license) = (d.path("vendor.key"), d.path("acme.license"));
        let (req, activated) = (d.path("request.json"), d.path("acme.activated"));
        let out = d.ok(&[
            "activate",
            "--key",
            &key,
            "--license",
            &license,
            "--request",
            &req,
            "--out",
            &activated,
        ]);
        assert_eq!(
            out,
            format!("activated license L-ACME for server 0f8e5c1a-server-uuid to {activated}\n")
        );

        let vendor = VerifyingKey::from_base64(&public).unwrap();
        let doc = verify_activated(&d.read("acme.activated"), &vendor).unwrap();
        assert_eq!(doc.servers, std::slice::from_ref(&request.server));
        assert_eq!(doc.activated_at, NOW);
        assert_eq!(doc.license.license_id, "L-ACME");
        assert_eq!(
            d.ok(&["verify", &activated, "--vendor-public", &public]),
            "OK: activated license file L-ACME for Acme Corp (org 1001), bound to server \
             0f8e5c1a-server-uuid\n"
        );
        let summary = d.ok(&["inspect", &activated, "--vendor-key", &key]);
        assert!(
            summary.starts_with("activated license file: signature valid\n"),
            "{summary}"
        );
        assert!(
            summary.contains("server uuid   0f8e5c1a-server-uuid"),
            "{summary}"
        );
        assert!(
            summary.contains("activated     2026-03-01 12:00:00 UTC"),
            "{summary}"
        );
    }

    /// `vendor activate` of the issued `acme.license` with `requests` (file names in `d`).
    fn activate_with(d: &Dir, requests: &[&str]) -> Result<(String, String), String> {
        let (key, license, out) = (
            d.path("vendor.key"),
            d.path("acme.license"),
            d.path("acme.activated"),
        );
        let paths: Vec<String> = requests.iter().map(|r| d.path(r)).collect();
        let mut args = vec!["activate", "--key", &key, "--license", &license];
        for path in &paths {
            args.extend(["--request", path.as_str()]);
        }
        args.extend(["--out", &out]);
        d.vendor(&args)
    }

    #[test]
    fn activate_binds_the_license_to_several_instances_at_once() {
        let d = Dir::new();
        let public = d.keygen("vendor.key");
        d.issue(&["--license-id", "L-ACME", "--item", ITEM])
            .unwrap();
        let (a, mut b) = (request(), request());
        b.server.uuid = "7c2d9e44-second-uuid".into();
        d.write("a.json", &serde_json::to_string(&a).unwrap());
        d.write("b.json", &serde_json::to_string(&b).unwrap());
        let (out, err) = activate_with(&d, &["a.json", "b.json"]).unwrap();
        assert_eq!(
            out,
            format!(
                "activated license L-ACME for 2 servers to {}\n  server 0f8e5c1a-server-uuid \
                 (from {})\n  server 7c2d9e44-second-uuid (from {})\n",
                d.path("acme.activated"),
                d.path("a.json"),
                d.path("b.json")
            )
        );
        assert_eq!(err, "");

        let vendor = VerifyingKey::from_base64(&public).unwrap();
        let doc = verify_activated(&d.read("acme.activated"), &vendor).unwrap();
        assert_eq!(doc.servers, [a.server.clone(), b.server.clone()]);
        for server in [&a.server, &b.server] {
            let certificate = tally_crypto::document::verify_certificate(
                doc.certificate_of(server).unwrap(),
                &vendor,
            )
            .unwrap();
            assert_eq!(&certificate.server, server);
            assert_eq!(certificate.activated_at, NOW);
        }
        let activated = d.path("acme.activated");
        assert_eq!(
            d.ok(&["verify", &activated, "--vendor-public", &public]),
            "OK: activated license file L-ACME for Acme Corp (org 1001), bound to servers \
             0f8e5c1a-server-uuid, 7c2d9e44-second-uuid\n"
        );
        let summary = d.ok(&["inspect", &activated, "--vendor-public", &public]);
        assert!(
            summary.contains(
                "  server uuid   0f8e5c1a-server-uuid\n  server uuid   7c2d9e44-second-uuid\n"
            ),
            "{summary}"
        );
    }

    #[test]
    fn activate_refuses_one_server_twice_or_too_many() {
        let d = Dir::new();
        d.keygen("vendor.key");
        d.issue(&["--item", ITEM]).unwrap();
        let a = request();
        let mut same_uuid = request();
        same_uuid.server.uuid = a.server.uuid.clone();
        let mut same_signing = request();
        same_signing.server.uuid = "other-uuid".into();
        same_signing.server.signing_key = a.server.signing_key.clone();
        let mut same_encryption = request();
        same_encryption.server.uuid = "other-uuid".into();
        same_encryption.server.encryption_key = a.server.encryption_key.clone();
        d.write("a.json", &serde_json::to_string(&a).unwrap());
        for (name, twin) in [
            ("uuid.json", &same_uuid),
            ("signing.json", &same_signing),
            ("encryption.json", &same_encryption),
        ] {
            d.write(name, &serde_json::to_string(twin).unwrap());
        }
        let hint = "each server instance must send its own activation request (its own data \
                    directory, on its own machine or with other hardware labels)";
        for (file, same) in [
            ("a.json", "the same server UUID 0f8e5c1a-server-uuid"),
            ("uuid.json", "the same server UUID 0f8e5c1a-server-uuid"),
            ("signing.json", "the same signing key"),
            ("encryption.json", "the same encryption key"),
        ] {
            assert_eq!(
                activate_with(&d, &["a.json", file]).unwrap_err(),
                format!(
                    "{} and {} name {same}: {hint}",
                    d.path("a.json"),
                    d.path(file)
                )
            );
        }
        let many = vec!["a.json"; 17];
        assert_eq!(
            activate_with(&d, &many).unwrap_err(),
            "a license can be activated for at most 16 servers at once (--request given 17 times)"
        );
        assert!(!d.exists("acme.activated"));
    }

    #[test]
    fn activate_refuses_what_it_cannot_vouch_for() {
        let d = Dir::new();
        d.keygen("vendor.key");
        d.keygen("other.key");
        d.issue(&["--item", ITEM]).unwrap();
        d.write("request.json", &serde_json::to_string(&request()).unwrap());
        let mut wrong_format = request();
        wrong_format.format = "something-else/1".into();
        d.write("wrong.json", &serde_json::to_string(&wrong_format).unwrap());
        let mut bad_keys = request();
        bad_keys.server.encryption_key = "AAAA".into();
        d.write("badkeys.json", &serde_json::to_string(&bad_keys).unwrap());
        let activate = |key: &str, license: &str, req: &str| {
            d.fails(&[
                "activate",
                "--key",
                &d.path(key),
                "--license",
                &d.path(license),
                "--request",
                &d.path(req),
                "--out",
                &d.path("out.activated"),
            ])
        };
        let err = activate("other.key", "acme.license", "request.json");
        assert!(err.contains("was not issued with the vendor key"), "{err}");
        assert!(err.contains("other.key"), "{err}");
        let err = activate("vendor.key", "acme.license", "wrong.json");
        assert!(
            err.contains("unsupported activation request format"),
            "{err}"
        );
        let err = activate("vendor.key", "acme.license", "badkeys.json");
        assert!(err.contains("invalid server encryption key"), "{err}");
        let err = activate("vendor.key", "acme.license", "acme.license");
        assert!(err.contains("is not JSON"), "{err}");
        let err = activate("vendor.key", "request.json", "request.json");
        assert!(err.contains("not a valid license file"), "{err}");
        assert!(!d.exists("out.activated"));
    }

    #[test]
    fn inspect_without_a_key_says_so() {
        let d = Dir::new();
        d.keygen("vendor.key");
        d.issue(&["--license-id", "L-ACME", "--item", ITEM])
            .unwrap();
        let file = d.path("acme.license");
        let summary = d.ok(&["inspect", &file]);
        assert!(
            summary.starts_with("license file: signature NOT checked"),
            "{summary}"
        );
        for needle in [
            "license id    L-ACME",
            "organization  Acme Corp (id 1001)",
            "issued        2026-03-01 12:00:00 UTC",
            "item L-ACME-1",
            "modules     qr, pdf417",
            "start       2026-01-01",
            "end         2027-01-01",
            "grace       10%",
            "window      365d",
        ] {
            assert!(summary.contains(needle), "missing {needle:?} in\n{summary}");
        }

        let (json, note) = d.vendor(&["inspect", &file, "--json"]).unwrap();
        let payload: License = serde_json::from_str(&json).unwrap();
        assert_eq!(payload.license_id, "L-ACME");
        assert!(note.contains("NOT checked"), "{note}");
        let key = d.path("vendor.key");
        let (json2, note) = d
            .vendor(&["inspect", &file, "--json", "--vendor-key", &key])
            .unwrap();
        assert_eq!(json2, json);
        assert_eq!(note, "license file: signature valid\n");
    }
}
