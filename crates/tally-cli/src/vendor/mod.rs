//! `tally vendor …`: the software vendor's tools. They work offline on files: a vendor key,
//! license files, activation requests from servers and activated license files.

mod dates;
mod item_spec;
mod summary;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tally_crypto::keys::{parse_vendor_key_file, vendor_key_file};
use tally_crypto::{SigningKey, VerifyingKey};
use tally_proto::UnixSeconds;
use tally_proto::license::{
    ACTIVATION_REQUEST_FORMAT, ActivationRequest, LICENSE_FORMAT, License, Organization,
};

#[derive(Subcommand, Debug)]
pub enum VendorCommand {
    /// Create the vendor's Ed25519 key.
    Keygen {
        /// Secret key file to create.
        #[arg(long)]
        out: PathBuf,
        /// Also write the public key alone to this file.
        #[arg(long)]
        public_out: Option<PathBuf>,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Issue a signed license file.
    Issue(IssueArgs),
    /// Bind a license file to one server, from its activation request.
    Activate {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        license: PathBuf,
        /// The server's activation request (`tally identity --out FILE`).
        #[arg(long)]
        request: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Show what a license file contains (verifying it when a key is given).
    Inspect {
        file: PathBuf,
        #[command(flatten)]
        key: PublicKeyArgs,
        /// Print the payload as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a license file's signature.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        key: PublicKeyArgs,
    },
}

#[derive(Args, Debug)]
pub struct IssueArgs {
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    org_id: String,
    #[arg(long)]
    org_name: String,
    #[arg(long)]
    alias: String,
    /// An item as `product=…,type=…,quantity=…,start=…,end=…[,modules=a+b,versions=N-M,grace=P,window=30d,id=…]`.
    #[arg(long = "item")]
    items: Vec<String>,
    /// A TOML file of `[[item]]` tables with the same keys.
    #[arg(long = "items")]
    items_file: Option<PathBuf>,
    /// The license id (generated when absent).
    #[arg(long)]
    license_id: Option<String>,
    #[arg(long)]
    out: PathBuf,
}

/// The vendor public key, given directly or through the secret key file.
#[derive(Args, Debug)]
pub struct PublicKeyArgs {
    /// Vendor public key (base64).
    #[arg(long, conflicts_with = "vendor_key")]
    vendor_public: Option<String>,
    /// Vendor secret key file (its public half is used).
    #[arg(long)]
    vendor_key: Option<PathBuf>,
}

impl PublicKeyArgs {
    fn load(&self) -> anyhow::Result<Option<VerifyingKey>> {
        match (&self.vendor_public, &self.vendor_key) {
            (Some(text), _) => Ok(Some(
                VerifyingKey::from_base64(text).context("--vendor-public")?,
            )),
            (None, Some(path)) => Ok(Some(load_key(path)?.verifying_key())),
            (None, None) => Ok(None),
        }
    }
}

pub fn run(cmd: VendorCommand, now: UnixSeconds) -> anyhow::Result<()> {
    match cmd {
        VendorCommand::Keygen {
            out,
            public_out,
            force,
        } => keygen(&out, public_out.as_deref(), force),
        VendorCommand::Issue(args) => issue(args, now),
        VendorCommand::Activate {
            key,
            license,
            request,
            out,
        } => activate(&key, &license, &request, &out, now),
        VendorCommand::Inspect { file, key, json } => inspect(&file, key.load()?, json),
        VendorCommand::Verify { file, key } => {
            let key = key
                .load()?
                .context("give --vendor-public KEY or --vendor-key FILE")?;
            let text = read(&file)?;
            let s = summary::verify(&text, &key)
                .with_context(|| format!("{} is not valid", file.display()))?;
            println!("OK: {}", s.headline());
            Ok(())
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load_key(path: &Path) -> anyhow::Result<SigningKey> {
    parse_vendor_key_file(&read(path)?)
        .with_context(|| format!("{} is not a vendor key", path.display()))
}

/// Writes through a temporary file so a failure never leaves half a file.
fn write_new(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    if private {
        return tally_server::identity::write_private(path, contents.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()));
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn keygen(out: &Path, public_out: Option<&Path>, force: bool) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists; use --force to replace it (licenses signed by the old key will no longer verify)",
            out.display()
        );
    }
    let key = SigningKey::generate()?;
    let public = key.verifying_key().to_base64();
    write_new(out, &vendor_key_file(&key), true)?;
    if let Some(p) = public_out {
        write_new(p, &format!("{public}\n"), false)?;
    }
    println!("vendor key written to {} (keep it secret)", out.display());
    println!("public key: {public}");
    Ok(())
}

fn issue(args: IssueArgs, now: UnixSeconds) -> anyhow::Result<()> {
    let key = load_key(&args.key)?;
    for (name, value) in [
        ("--org-id", &args.org_id),
        ("--org-name", &args.org_name),
        ("--alias", &args.alias),
    ] {
        if value.trim().is_empty() {
            bail!("{name} must not be empty");
        }
    }
    let mut raws = Vec::new();
    for (n, spec) in args.items.iter().enumerate() {
        raws.push(
            item_spec::parse_spec(spec).map_err(|e| anyhow::anyhow!("--item {}: {e}", n + 1))?,
        );
    }
    if let Some(path) = &args.items_file {
        raws.extend(
            item_spec::parse_toml(&read(path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    let license_id = match args.license_id {
        Some(id) => id,
        None => format!("L-{}", uuid::Uuid::new_v4().simple()),
    };
    let items = item_spec::build_all(&raws, &license_id).map_err(|e| anyhow::anyhow!(e))?;
    let license = License {
        format: LICENSE_FORMAT.into(),
        license_id,
        organization: Organization {
            id: args.org_id,
            name: args.org_name,
        },
        alias: args.alias,
        issued_at: now,
        items,
    };
    let text = tally_crypto::document::issue_license(&license, &key)?;
    write_new(&args.out, &text, false)?;
    println!(
        "issued license {} ({} items) to {}",
        license.license_id,
        license.items.len(),
        args.out.display()
    );
    Ok(())
}

fn activate(
    key: &Path,
    license: &Path,
    request: &Path,
    out: &Path,
    now: UnixSeconds,
) -> anyhow::Result<()> {
    let key = load_key(key)?;
    let text = read(license)?;
    let request: ActivationRequest = serde_json::from_str(&read(request)?)
        .with_context(|| format!("{} is not an activation request", request.display()))?;
    if request.format != ACTIVATION_REQUEST_FORMAT {
        bail!("unsupported activation request format `{}`", request.format);
    }
    let activated = tally_crypto::document::activate_license(&text, &request, &key, now)
        .with_context(|| format!("cannot activate {}", license.display()))?;
    write_new(out, &activated, false)?;
    println!(
        "activated for server {}: {}",
        request.server.uuid,
        out.display()
    );
    Ok(())
}

fn inspect(file: &Path, key: Option<VerifyingKey>, json: bool) -> anyhow::Result<()> {
    let text = read(file)?;
    let (status, value) = match key {
        Some(k) => {
            summary::verify(&text, &k)
                .with_context(|| format!("{} is not valid", file.display()))?;
            (
                "signature valid",
                tally_crypto::document::read_unverified(&text)?.1,
            )
        }
        None => (
            "signature NOT checked (give --vendor-public to verify)",
            tally_crypto::document::read_unverified(&text)?.1,
        ),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", summary::describe(&value)?);
        println!("{status}");
    }
    Ok(())
}
