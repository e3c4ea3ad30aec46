//! Periodic online backups of the database, and the file handling they share with `tally backup`:
//! a copy is written under a temporary name, renamed into place only once it is complete and
//! checked (so a backup file is never half-written), and the oldest ones beyond
//! `backup_keep` are removed.
//!
//! The copy itself belongs to the store (SQLite's online backup API in `tally-store-sqlite`); the
//! server only gets a function that writes a checked copy to a path, so it stays store-agnostic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::{AppState, Settings};

/// Writes a complete, flushed and checked copy of the database to the given path. Blocking.
pub type CopyDatabase = Arc<dyn Fn(&Path) -> Result<(), String> + Send + Sync>;

/// Start of every backup file name: `tally-YYYYMMDDTHHMMSSZ.db`.
const PREFIX: &str = "tally-";
const SUFFIX: &str = ".db";
/// Length of the timestamp between prefix and suffix (`YYYYMMDDTHHMMSSZ`).
const STAMP_LEN: usize = 16;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot copy the database: {0}")]
    Copy(String),
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io {
        context,
        path,
        source,
    }
}

/// The directory backups go to: `backup_dir`, else `<data_dir>/backups`.
pub fn backup_dir(settings: &Settings) -> PathBuf {
    settings
        .backup_dir
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("backups"))
}

/// `tally-YYYYMMDDTHHMMSSZ.db` for the time `at` (UTC): names sort in time order.
pub fn file_name(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z{SUFFIX}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn is_backup_name(name: &str) -> bool {
    name.len() == PREFIX.len() + STAMP_LEN + SUFFIX.len()
        && name.starts_with(PREFIX)
        && name.ends_with(SUFFIX)
}

/// Writes a backup to `dest` through a temporary file in the same directory, renamed into place
/// once `copy` has written and checked it; then flushes the directory so the rename survives a
/// crash. Blocking.
pub fn write_backup(
    copy: &dyn Fn(&Path) -> Result<(), String>,
    dest: &Path,
) -> Result<(), BackupError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io("cannot create the backup directory", &dir))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tally.db".into());
    let partial = dir.join(format!(".{name}.partial"));
    if let Err(e) = copy(&partial) {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::Copy(e));
    }
    if let Err(e) = std::fs::rename(&partial, dest) {
        let _ = std::fs::remove_file(&partial);
        return Err(io("cannot move the backup into place at", dest)(e));
    }
    sync_dir(&dir)
}

/// Makes a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot flush the directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes the oldest backup files of `dir` beyond the `keep` newest; returns those removed.
/// Only files named like backups are touched.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io("cannot list the backup directory", dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::with_capacity(excess);
    for name in names.into_iter().take(excess) {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(io("cannot remove the old backup", &path))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// One periodic backup: a new file in `dir`, then the oldest beyond `keep` removed. Blocking.
pub fn backup_once(
    copy: &dyn Fn(&Path) -> Result<(), String>,
    dir: &Path,
    keep: usize,
) -> Result<PathBuf, BackupError> {
    let dest = dir.join(file_name(SystemTime::now()));
    write_backup(copy, &dest)?;
    prune(dir, keep.max(1))?;
    Ok(dest)
}

/// Backs the database up every `backup_interval_seconds` (none when 0), on a blocking thread so
/// the async workers keep serving. A failure is logged and reported to the admin; the next
/// attempt comes at the next interval.
pub fn spawn(state: &AppState, copy: CopyDatabase) {
    let seconds = state.settings.backup_interval_seconds;
    if seconds == 0 {
        tracing::info!("periodic backups are off (backup_interval_seconds = 0)");
        return;
    }
    let every = Duration::from_secs(seconds);
    let dir = backup_dir(&state.settings);
    let keep = usize::try_from(state.settings.backup_keep).unwrap_or(usize::MAX);
    let s = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (copy, dir) = (copy.clone(), dir.clone());
            let started = Instant::now();
            let outcome = tokio::task::spawn_blocking(move || backup_once(&*copy, &dir, keep))
                .await
                .unwrap_or_else(|e| Err(BackupError::Copy(format!("the backup task failed: {e}"))));
            match outcome {
                Ok(path) => tracing::info!(
                    file = %path.display(),
                    millis = started.elapsed().as_millis() as u64,
                    "database backed up"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "database backup failed");
                    s.internal_error(format!("database backup failed: {e}"));
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_time_order_and_only_backups_are_pruned() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000);
        assert_eq!(file_name(at), "tally-20260601T000000Z.db");
        let dir = tempfile::tempdir().unwrap();
        let copy = |p: &Path| std::fs::write(p, b"copy").map_err(|e| e.to_string());
        for s in 0..4 {
            let name = file_name(at + Duration::from_secs(s));
            write_backup(&copy, &dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.txt",
                "tally-20260601T000002Z.db",
                "tally-20260601T000003Z.db"
            ]
        );
        let failing = |_: &Path| Err("disk full".to_string());
        let err = write_backup(&failing, &dir.path().join("x.db")).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(!dir.path().join(".x.db.partial").exists());
    }
}
