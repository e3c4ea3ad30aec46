//! `tally serve` and `tally identity`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tally_core::{Clock, SystemClock};
use tally_server::identity::{ServerIdentity, SystemProbe};
use tally_server::{AppState, Settings};

use crate::store::Location;
use crate::{demo, settings};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Settings file (default: ./tally.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 0.0.0.0:48080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory (default ./tally-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The vendor's public key (base64 Ed25519).
    #[arg(long)]
    pub vendor_public_key: Option<String>,
    /// HTTPS on the listen address: `self-signed` (a certificate made at first start, kept in the
    /// data directory), `files` (`tls_cert_file`, `tls_key_file` in the settings) or `off`.
    #[arg(long, value_parser = ["off", "self-signed", "files"])]
    pub tls: Option<String>,
    /// Set up a working demo: a demo vendor key, a license activated for this server, imported,
    /// and a ready client configuration.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args, Debug)]
pub struct IdentityArgs {
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the activation request to this file instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = settings::load(
        args.config.as_deref(),
        settings::Overrides {
            listen: args.listen,
            data_dir: args.data_dir,
            vendor_public_key: args.vendor_public_key,
            tls: args.tls,
        },
    )?;
    // Held until the process ends: a second server on the same directory refuses to start.
    let _data_dir = tally_server::data_dir::DataDirLock::acquire(&settings.data_dir)?;
    let demo_vendor = if args.demo {
        Some(demo::prepare(&mut settings)?)
    } else {
        None
    };
    settings
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let location = Location::of(&settings);
        let state = open_state(settings).await?;
        match location {
            Location::Sqlite(db) => {
                tally_server::backups::spawn(&state, crate::backup::copier(db));
            }
            // PostgreSQL is backed up with its own tools (see the README).
            Location::Postgres(_) => {}
        }
        if let Some(vendor) = demo_vendor {
            demo::install(&state, &vendor).await?;
        }
        let listeners = listen(&state.settings).await?;
        let scheme = if listeners.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(
            address = %state.settings.listen,
            url = %format!("{scheme}://{}", state.settings.listen),
            uuid = %state.identity.uuid,
            data_dir = %state.settings.data_dir.display(),
            "Tally server listening"
        );
        if let Some(tls) = &listeners.tls {
            tracing::info!(
                fingerprint = %tls.fingerprint(),
                "TLS certificate (SHA-256 fingerprint, which clients may pin)"
            );
        }
        if let Some(plain) = state.settings.http_listen {
            let what = if state.settings.http_redirect {
                "redirects to HTTPS"
            } else {
                "serves too"
            };
            tracing::info!(address = %plain, "plain HTTP listener: {what}");
        }
        tally_server::serve_on(listeners, state, shutdown_signal())
            .await
            .context("server failed")?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Binds the listeners the settings name, with HTTPS when `tls` is on.
async fn listen(settings: &Settings) -> anyhow::Result<tally_server::Listeners> {
    let tls =
        tally_server::tls::ServerTls::from_settings(settings).context("cannot serve HTTPS")?;
    let bind = |address: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))
    };
    let main = bind(settings.listen).await?;
    let plain = match settings.http_listen {
        Some(address) => Some(bind(address).await?),
        None => None,
    };
    Ok(tally_server::Listeners { main, tls, plain })
}

/// Opens the identity in the data directory and the store the settings name.
pub async fn open_state(settings: Settings) -> anyhow::Result<AppState> {
    let clock = Arc::new(SystemClock);
    let identity = ServerIdentity::load_or_create(
        &settings.data_dir,
        &settings.hardware_labels,
        &SystemProbe,
        clock.now(),
    )?;
    let store = Location::of(&settings).open().await?;
    AppState::open(settings, store, clock, identity)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

pub fn identity(args: IdentityArgs) -> anyhow::Result<()> {
    let settings = settings::load(
        args.config.as_deref(),
        settings::Overrides {
            data_dir: args.data_dir,
            ..Default::default()
        },
    )?;
    let identity = ServerIdentity::load_or_create(
        &settings.data_dir,
        &settings.hardware_labels,
        &SystemProbe,
        SystemClock.now(),
    )?;
    if let Some(problem) = &identity.mismatch {
        eprintln!("warning: {problem}");
    }
    let json = serde_json::to_string_pretty(&identity.activation_request())?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, format!("{json}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            crate::output::line(format!(
                "activation request for server {} written to {}",
                identity.uuid,
                path.display()
            ))?;
        }
        None => crate::output::line(json)?,
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM; in-flight requests then finish before the process exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
