//! `tally backup` and `tally restore`: one online backup now, and putting a backup back in place.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use tally_server::backups::{self, CopyDatabase};
use tally_server::data_dir::DataDirLock;

use crate::settings;
use crate::store::DATABASE_FILE;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Settings file (default: ./tally.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory of the server (default ./tally-data); it may be running.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// File to write (default: a new tally-YYYYMMDDTHHMMSSZ.db in the backup directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup to restore.
    pub file: PathBuf,
    /// Settings file (default: ./tally.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory to restore into (default ./tally-data); no server may be running on it.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The store's online copy of the database at `db`, checked, for [`backups`].
pub fn copier(db: PathBuf) -> CopyDatabase {
    std::sync::Arc::new(move |dest: &Path| {
        tally_store_sqlite::backup_database(&db, dest)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// The settings of a server whose data is in the SQLite file: a PostgreSQL database is backed up
/// and restored with PostgreSQL's own tools.
fn load_settings(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<tally_server::Settings> {
    let settings = settings::load(
        config,
        settings::Overrides {
            data_dir,
            ..Default::default()
        },
    )?;
    anyhow::ensure!(
        settings.database_url.is_none(),
        "this server keeps its data in PostgreSQL (database_url): back it up and restore it with \
         PostgreSQL's tools (pg_dump, pg_restore, or continuous archiving); `tally backup` and \
         `tally restore` handle the SQLite file only"
    );
    Ok(settings)
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let settings = load_settings(args.config.as_deref(), args.data_dir)?;
    let db = settings.data_dir.join(DATABASE_FILE);
    let out = match args.out {
        Some(out) => out,
        None => backups::backup_dir(&settings).join(backups::file_name(SystemTime::now())),
    };
    backups::write_backup(&*copier(db.clone()), &out)
        .with_context(|| format!("cannot back up {}", db.display()))?;
    crate::output::line(out.display().to_string())?;
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let settings = load_settings(args.config.as_deref(), args.data_dir)?;
    let dir = settings.data_dir;
    // Held until the end: no server may start on the directory while its database is replaced.
    let _lock = DataDirLock::acquire(&dir)?;
    let db = dir.join(DATABASE_FILE);
    let incoming = dir.join(format!("{DATABASE_FILE}.restoring"));
    // The check runs on a copy, so that the backup itself is never modified.
    let checked = std::fs::copy(&args.file, &incoming)
        .with_context(|| format!("cannot copy {}", args.file.display()))
        .and_then(|_| {
            tally_store_sqlite::check_database(&incoming)
                .with_context(|| format!("{} cannot be restored", args.file.display()))
        })
        .and_then(|checked| {
            std::fs::File::open(&incoming)
                .and_then(|f| f.sync_all())
                .context("cannot flush the restored copy")?;
            Ok(checked)
        });
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&incoming);
            return Err(e);
        }
    };
    let replaced = db.exists();
    // A WAL left by the old database would be replayed onto the restored one: remove it first.
    for side in ["-wal", "-shm"] {
        let path = dir.join(format!("{DATABASE_FILE}{side}"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
    std::fs::rename(&incoming, &db)
        .with_context(|| format!("cannot move the restored database to {}", db.display()))?;
    backups::sync_dir(&dir)?;
    let what = if replaced {
        "replacing the previous database"
    } else {
        "no database was there before"
    };
    crate::output::line(format!(
        "restored {} into {} ({what}; schema version {}); start the server to serve it",
        args.file.display(),
        db.display(),
        checked.schema_version
    ))?;
    Ok(())
}
