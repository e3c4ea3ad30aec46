//! `tally vendor …`: the software vendor's tools. They work offline, on files only: the vendor
//! key, issued license files, activation requests sent by servers and activated license files.
//! Nothing here talks to a server, so the vendor key never has to leave the vendor's machine.

mod commands;
mod dates;
mod fsio;
mod item_spec;
mod summary;

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};
use tally_proto::UnixSeconds;

/// The vendor subcommands (`tally vendor <command>`).
#[derive(Subcommand, Debug)]
pub enum VendorCommand {
    /// Create the vendor's Ed25519 signing key, the root of trust of every license file.
    Keygen(KeygenArgs),
    /// Issue a signed license file for an organization.
    Issue(IssueArgs),
    /// Bind a license file to one server, or to several instances serving the same clients, from
    /// the activation requests they printed.
    Activate(ActivateArgs),
    /// Show what a license file contains (verifying its signature when a key is given).
    Inspect(InspectArgs),
    /// Check a license file's signature against the vendor key.
    Verify(VerifyArgs),
}

/// `tally vendor keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Secret key file to create (written with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the public key (base64) alone to this file, for servers and clients.
    #[arg(long, value_name = "FILE")]
    pub public_out: Option<PathBuf>,
    /// Replace an existing key file (licenses signed with the old key will no longer verify).
    #[arg(long)]
    pub force: bool,
}

/// `tally vendor issue`.
#[derive(Args, Debug)]
pub struct IssueArgs {
    /// The vendor secret key file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The licensee's organization id.
    #[arg(long, value_name = "ID")]
    pub org_id: String,
    /// The licensee's organization name.
    #[arg(long, value_name = "NAME")]
    pub org_name: String,
    /// A short name of this license, shown to administrators.
    #[arg(long, value_name = "ALIAS")]
    pub alias: String,
    /// An item (repeatable): `product=P,type=T,quantity=N,start=DATE,end=DATE`, optionally
    /// followed by `,modules=a+b` `,versions=N-M` `,grace=PERCENT` `,window=24h|30d|90d|365d`
    /// `,metric=FEATURE` `,id=ITEM-ID`. DATE is YYYY-MM-DD (midnight UTC) or RFC 3339.
    #[arg(long = "item", value_name = "SPEC")]
    pub item: Vec<String>,
    /// A TOML file of `[[item]]` tables with the same keys (`modules` is a list).
    #[arg(long = "items", value_name = "FILE")]
    pub items_file: Option<PathBuf>,
    /// The license id (default: `L-` and a random UUID).
    #[arg(long, value_name = "ID")]
    pub license_id: Option<String>,
    /// The license file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `tally vendor activate`.
#[derive(Args, Debug)]
pub struct ActivateArgs {
    /// The vendor secret key file (the one that issued the license).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The issued license file.
    #[arg(long, value_name = "FILE")]
    pub license: PathBuf,
    /// The server's activation request (JSON printed by `tally identity`). Repeat it to activate
    /// the license for several server instances at once (up to 16, each with its own identity).
    #[arg(long, value_name = "FILE", required = true)]
    pub request: Vec<PathBuf>,
    /// The activated license file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `tally vendor inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The license file (issued or activated).
    pub file: PathBuf,
    /// Verify against this vendor public key (base64).
    #[arg(long, value_name = "KEY_BASE64", conflicts_with = "vendor_key")]
    pub vendor_public: Option<String>,
    /// Verify against the public half of this vendor secret key file.
    #[arg(long, value_name = "FILE")]
    pub vendor_key: Option<PathBuf>,
    /// Print the signed JSON payload instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// `tally vendor verify`.
#[derive(Args, Debug)]
#[command(group(
    ArgGroup::new("trusted_key")
        .required(true)
        .args(["vendor_public", "vendor_key"])
))]
pub struct VerifyArgs {
    /// The license file (issued or activated).
    pub file: PathBuf,
    /// The vendor public key (base64).
    #[arg(long, value_name = "KEY_BASE64")]
    pub vendor_public: Option<String>,
    /// The vendor secret key file (its public half is used).
    #[arg(long, value_name = "FILE")]
    pub vendor_key: Option<PathBuf>,
}

/// Runs one vendor command, printing to stdout (results) and stderr (notes and warnings).
/// `now` is the issue or activation time written into the documents.
pub fn run(cmd: VendorCommand, now: UnixSeconds) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    commands::execute(cmd, now, &mut stdout.lock(), &mut stderr.lock())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: VendorCommand,
    }

    fn parse(args: &[&str]) -> Result<VendorCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("vendor").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn issue_takes_repeated_items_and_a_file() {
        let cmd = parse(&[
            "issue",
            "--key",
            "k",
            "--org-id",
            "1",
            "--org-name",
            "A",
            "--alias",
            "a",
            "--item",
            "x=1",
            "--item",
            "y=2",
            "--items",
            "i.toml",
            "--out",
            "o",
        ])
        .unwrap();
        let VendorCommand::Issue(args) = cmd else {
            panic!("not issue: {cmd:?}")
        };
        assert_eq!(args.item, ["x=1", "y=2"]);
        assert_eq!(args.items_file, Some(PathBuf::from("i.toml")));
        assert_eq!(args.license_id, None);
    }

    #[test]
    fn activate_takes_one_or_more_requests() {
        let base = ["activate", "--key", "k", "--license", "l", "--out", "o"];
        let requests = |cmd: VendorCommand| match cmd {
            VendorCommand::Activate(args) => args.request,
            other => panic!("not activate: {other:?}"),
        };
        let one = parse(&[&base[..], &["--request", "a.json"]].concat()).unwrap();
        assert_eq!(requests(one), [PathBuf::from("a.json")]);
        let two = parse(&[&base[..], &["--request", "a.json", "--request", "b.json"]].concat());
        assert_eq!(
            requests(two.unwrap()),
            [PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        assert!(parse(&base).is_err(), "at least one request");
    }

    #[test]
    fn verify_needs_exactly_one_key_and_inspect_at_most_one() {
        assert!(parse(&["verify", "f"]).is_err());
        assert!(parse(&["verify", "f", "--vendor-public", "K", "--vendor-key", "k"]).is_err());
        assert!(parse(&["verify", "f", "--vendor-key", "k"]).is_ok());
        assert!(parse(&["inspect", "f"]).is_ok());
        assert!(parse(&["inspect", "f", "--vendor-public", "K", "--vendor-key", "k"]).is_err());
        assert!(parse(&["inspect", "f", "--vendor-public", "K", "--json"]).is_ok());
    }
}
