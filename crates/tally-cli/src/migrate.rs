//! `tally migrate --to postgres://…`: copies the SQLite database of a stopped server, whole, into
//! an empty PostgreSQL database, which the server can then use (`database_url`).
//!
//! The SQLite side reads one snapshot on a blocking thread and hands rows on in chunks through a
//! bounded channel; the PostgreSQL side loads them with `COPY` in one transaction, committed only
//! when every table arrived whole. So a million devices never sit in memory at once, and a copy
//! that fails leaves the target as it was.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tally_server::data_dir::DataDirLock;
use tally_server::settings::POSTGRES_SCHEMES;
use tally_store::copy::{RowCount, Transfer};
use tally_store_postgres::Importer;
use tally_store_sqlite::ExportError;
use tokio::sync::mpsc;

use crate::settings;
use crate::store::{DATABASE_FILE, redacted};

/// Chunks of rows in flight between the reading thread and PostgreSQL.
const CHUNKS_IN_FLIGHT: usize = 4;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into (postgres://user:password@host:port/database); it
    /// must hold no Tally data yet. Tally's tables are created in it.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The SQLite database to copy [default: tally.db in the data directory].
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Settings file (default: ./tally.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory of the server (default ./tally-data); the server must be stopped.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        POSTGRES_SCHEMES.iter().any(|s| args.to.starts_with(s)),
        "--to: a PostgreSQL URL (postgres://user:password@host:port/database)"
    );
    let settings = settings::load(
        args.config.as_deref(),
        settings::Overrides {
            data_dir: args.data_dir,
            ..Default::default()
        },
    )?;
    let dir = settings.data_dir;
    let source = args.from.unwrap_or_else(|| dir.join(DATABASE_FILE));
    anyhow::ensure!(
        source.is_file(),
        "no database at {}: name the server's data directory (--data-dir, or data_dir in the \
         settings) or the file (--from)",
        source.display()
    );
    // Held until the copy is done: no server may write to the database meanwhile, or its last
    // writes would be missing from the copy. (A `--from` file with no data directory has no
    // server to keep away.)
    let _lock =
        if dir.is_dir() {
            Some(DataDirLock::acquire(&dir).context(
                "stop the server first: the database must not change while it is copied",
            )?)
        } else {
            None
        };
    let target = redacted(&args.to);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (exported, imported) = runtime.block_on(copy(&source, &args.to, &target))?;

    let mut mismatches = Vec::new();
    for from in &exported {
        let held = imported
            .iter()
            .find(|c| c.table == from.table)
            .map_or(0, |c| c.rows);
        let noun = if from.rows == 1 { "row" } else { "rows" };
        let mut line = format!("{:<18} {:>10} {noun}", from.table, from.rows);
        if held != from.rows {
            line.push_str(&format!("  MISMATCH: PostgreSQL holds {held}"));
            mismatches.push(format!(
                "{} ({} in SQLite, {held} in PostgreSQL)",
                from.table, from.rows
            ));
        }
        crate::output::line(line)?;
    }
    anyhow::ensure!(
        mismatches.is_empty(),
        "the copy in {target} does not match {}: {}",
        source.display(),
        mismatches.join(", ")
    );
    let password = if target != args.to {
        " (with its password)"
    } else {
        ""
    };
    crate::output::line(format!(
        "copied {} into {target}: set database_url = \"{target}\"{password} in the settings and \
         start the server again on the data directory {}, where its identity keys stay (only the \
         database moved)",
        source.display(),
        dir.display(),
    ))?;
    Ok(())
}

/// Copies `source` into the database at `url` (shown as `target`); returns the rows per table
/// the source had and the rows the target holds after the commit.
async fn copy(
    source: &Path,
    url: &str,
    target: &str,
) -> anyhow::Result<(Vec<RowCount>, Vec<RowCount>)> {
    let importer = Importer::connect(url)
        .await
        .with_context(|| format!("cannot prepare the PostgreSQL database {target}"))?;
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let path = source.to_owned();
    let export = tokio::task::spawn_blocking(move || {
        let mut current = "";
        let counts = tally_store_sqlite::export(&path, |table, rows| {
            if table.name != current {
                current = table.name;
                tracing::info!(table = current, "copying");
            }
            match sender.blocking_send(Transfer::Rows(table, rows)) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        })?;
        sender
            .blocking_send(Transfer::Done(counts.clone()))
            .map_err(|_| ExportError::Stopped)?;
        Ok::<_, ExportError>(counts)
    });
    let imported = importer.import(receiver).await;
    let exported = export.await.context("the reading thread failed")?;
    match (exported, imported) {
        // The reading side failed: the import stopped without committing.
        (Err(e), _) if !matches!(e, ExportError::Stopped) => {
            Err(e).with_context(|| format!("cannot copy {}", source.display()))
        }
        (_, Err(e)) => Err(e).with_context(|| format!("cannot copy into {target}")),
        (Err(e), Ok(_)) => Err(e.into()),
        (Ok(exported), Ok(imported)) => Ok((exported, imported)),
    }
}
