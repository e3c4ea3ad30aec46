//! One server per data directory. A second process serving the same directory would run a second
//! writer on the same database and the same identity; instead it refuses to start and says which
//! process holds the directory.
//!
//! The lock is an exclusive advisory lock on `<data_dir>/lock`, held as long as the
//! [`DataDirLock`] lives; the operating system releases it when the process ends, however it
//! ends (a `kill -9` leaves no stale lock behind). The file holds the holder's process id, for
//! the message only.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "the data directory {dir} is in use by another Tally server (process {holder}); stop it first, or give another --data-dir"
    )]
    InUse { dir: PathBuf, holder: String },
    #[error("cannot lock the data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Exclusive use of a data directory, until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `dir` (created if missing), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, DataDirError> {
        let io = |source| DataDirError::Io {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
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
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
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
}
