//! `tally`: one binary for the server, the vendor's tools, the administrator and a shell client.

mod admin;
mod admin_config;
mod admin_reset;
mod backup;
mod bench;
mod client;
mod demo;
mod migrate;
mod output;
mod serve;
mod settings;
mod store;
mod vendor;

use clap::{Parser, Subcommand};
use tally_core::Clock;

#[derive(Parser, Debug)]
#[command(
    name = "tally",
    version,
    about = "Tally license tracking server, vendor tools and client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (port 48080, SQLite store in the data directory).
    Serve(serve::ServeArgs),
    /// Back up the database now (online: the server may be running); prints the file written.
    Backup(backup::BackupArgs),
    /// Put a backup in place of the database (the server must be stopped).
    Restore(backup::RestoreArgs),
    /// Copy the SQLite database of a stopped server into an empty PostgreSQL database.
    Migrate(migrate::MigrateArgs),
    /// Print this server's activation request (UUID and public keys) for the vendor.
    Identity(serve::IdentityArgs),
    /// Vendor tools: keys, issuing, activating and checking license files.
    #[command(subcommand)]
    Vendor(vendor::VendorCommand),
    /// Administer a running server through its admin API.
    Admin(admin::AdminArgs),
    /// Drive the client SDK from a shell: authorize, record usage, send reports.
    Client(client::ClientArgs),
    /// Print the table of stable error codes (Markdown).
    ErrorCodes,
    /// Load-test a real server against bare baselines on this machine (loopback only).
    Bench(bench::BenchArgs),
    /// Serve the benchmark baselines (started by `tally bench`).
    #[command(hide = true)]
    BenchBaseline(bench::BaselineArgs),
}

fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let now = tally_core::SystemClock.now();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Identity(args) => serve::identity(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Vendor(cmd) => vendor::run(cmd, now).map_err(output::local_broken_pipe),
        Command::Admin(args) => admin::run(args),
        Command::Client(args) => client::run(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchBaseline(args) => bench::baseline(args),
        Command::ErrorCodes => output::print(&tally_proto::error::markdown_table()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader stopped early (`| head -1`): it got what it wanted. Status 0 rather than
        // the 141 of a process killed by SIGPIPE, so `set -o pipefail` scripts go on.
        Err(e) if output::is_closed(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` selects the level (default: info for Tally, warn elsewhere).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,tally=info,tally_server=info,tally_store_sqlite=info",
        )
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
