//! Placeholder until the vendor module lands.
#[derive(clap::Subcommand, Debug)]
pub enum VendorCommand {
    Keygen,
}
pub fn run(_cmd: VendorCommand, _now: tally_proto::UnixSeconds) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
