//! One server per data directory. A second process serving the same directory would run a second
//! writer on the same database and the same identity; instead it refuses to start and says which
//! process holds the directory.
//!
//! The lock is an exclusive advisory lock on `<data_dir>/lock`, held as long as the
//! [`DataDirLock`] lives; the operating system releases it when the process ends, however it
//! ends (a `kill -9` leaves no stale lock behind). The file holds the holder's process id, for
//! the message only.
//!
//! The directory holds the server's keys, the secret key of the stored secrets, the admin token
//! and the database: it is made readable by its owner only (0700, files 0600), and what the
//! process creates afterwards is private too (umask 077). A directory that cannot be written is
//! refused at once, rather than answering every later write with an error.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// Written and removed at every start to prove the directory can be written.
const WRITE_PROBE: &str = ".write-probe";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "the data directory {dir} is in use by another Tally server (process {holder}); stop it first, or give another --data-dir"
    )]
    InUse { dir: PathBuf, holder: String },
    #[error("{}", not_writable_message(dir, source))]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock the data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The sentence a server that cannot write its data directory stops with.
pub fn not_writable_message(dir: &Path, cause: &std::io::Error) -> String {
    format!(
        "the data directory {} cannot be written ({cause}); Tally keeps its database, identity and backups there: make it writable by the user running the server (and the file system read-write), or give another --data-dir",
        dir.display()
    )
}

/// Exclusive use of a data directory, until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `dir` (created if missing, private to its owner), or says who holds it
    /// or why it cannot be written. From here on the process creates files for its owner only.
    pub fn acquire(dir: &Path) -> Result<Self, DataDirError> {
        let io = |source| DataDirError::Io {
            dir: dir.to_owned(),
            source,
        };
        let not_writable = |source| DataDirError::NotWritable {
            dir: dir.to_owned(),
            source,
        };
        create_private_dir(dir).map_err(not_writable)?;
        make_private_from_now_on();
        let mut options = File::options();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(dir.join(LOCK_FILE)).map_err(not_writable)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "unknown".to_owned(),
                    pid => pid.to_owned(),
                };
                return Err(DataDirError::InUse {
                    dir: dir.to_owned(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        probe_writes(dir).map_err(not_writable)?;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        if let Err(e) = make_private(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot make every file of the data directory private to its owner");
        }
        Ok(Self { _file: file })
    }
}

/// Creates `dir` (and missing parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Files and directories the process creates from now on are its owner's only (the database,
/// its `-wal` and `-shm`, backups), whichever library creates them.
fn make_private_from_now_on() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Writes, syncs and removes a small file: a read-only mount or directory fails here, at start.
fn probe_writes(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(WRITE_PROBE);
    let mut f = File::create(&path)?;
    f.write_all(b"probe\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(&path)
}

/// Takes group and other permissions away from `dir` and everything under it, for a directory
/// made by an older version (0755 and 0644 then). Symbolic links are left alone.
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(dir)?;
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
            for entry in std::fs::read_dir(dir)? {
                make_private(&entry?.path())?;
            }
        } else if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).unwrap();
        let second = DataDirLock::acquire(&data).unwrap_err();
        let message = second.to_string();
        assert!(
            message.contains("in use by another Tally server"),
            "{message}"
        );
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(&data).unwrap();
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_its_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh");
        let lock = DataDirLock::acquire(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join(LOCK_FILE)), 0o600);
        // What the process creates afterwards (the database, backups) is private too.
        std::fs::write(fresh.join("tally.db"), b"").unwrap();
        assert_eq!(mode(&fresh.join("tally.db")), 0o600);
        drop(lock);

        // A directory made by an older version, readable by everyone.
        let old = dir.path().join("old");
        std::fs::create_dir_all(old.join("backups")).unwrap();
        for (path, m) in [(old.clone(), 0o755), (old.join("backups"), 0o755)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        for file in ["tally.db", "tally.db-wal", "identity.json", "backups/b1.db"] {
            std::fs::write(old.join(file), b"x").unwrap();
            std::fs::set_permissions(old.join(file), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        let _lock = DataDirLock::acquire(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
        assert_eq!(mode(&old.join("backups")), 0o700);
        for file in ["tally.db", "tally.db-wal", "identity.json", "backups/b1.db"] {
            assert_eq!(mode(&old.join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let e = DataDirLock::acquire(&file.join("data")).unwrap_err();
        assert!(matches!(e, DataDirError::NotWritable { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains("cannot be written"), "{message}");
        assert!(message.contains("a-file/data"), "{message}");
    }

    #[test]
    fn the_refusal_names_the_directory_the_cause_and_the_way_out() {
        let cause = std::io::Error::from_raw_os_error(30);
        let message = not_writable_message(Path::new("/srv/tally"), &cause);
        assert!(message.starts_with("the data directory /srv/tally cannot be written"));
        assert!(message.contains("Read-only file system"), "{message}");
        assert!(message.contains("--data-dir"), "{message}");
    }

    /// Permission bits stop a write only for a user other than root (root writes anyway);
    /// the end-to-end test covers root with a read-only mount.
    #[cfg(unix)]
    #[test]
    fn a_read_only_directory_is_refused_for_an_ordinary_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        drop(DataDirLock::acquire(&data).unwrap());
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
        let probe = std::fs::File::create(data.join("probe"));
        if probe.is_ok() {
            eprintln!("skipped: running as root, permission bits do not stop writes");
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
            return;
        }
        let e = DataDirLock::acquire(&data).unwrap_err();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(e, DataDirError::NotWritable { .. }), "{e:?}");
    }
}
