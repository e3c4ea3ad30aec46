//! The state directory. Every file is replaced atomically (temporary file, fsync, rename, fsync
//! of the directory), so a crash leaves either the old or the new content, never a torn file.
//! Read-modify-write sequences run under [`StateDir::lock`], which excludes other threads and,
//! through an advisory file lock, other processes sharing the directory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{SdkError, SdkResult};

/// The device UUID (random mode), one line.
pub const DEVICE_ID: &str = "device-id";
/// The last verified grant with the certificates and server identity that prove it.
pub const GRANT: &str = "grant.json";
/// The highest device clock reading seen, to detect a clock moved back.
pub const CLOCK: &str = "clock.json";
/// The open slice's counters and the reports not yet acknowledged.
pub const USAGE: &str = "usage.json";
/// The report session of the last authorization: server, ticket, key, last message number.
pub const SESSION: &str = "session.json";
/// Why the server last refused this device for good (its grant was then forgotten).
pub const REFUSAL: &str = "refusal.json";
/// Empty file the advisory lock is taken on.
const LOCK: &str = "lock";

pub struct StateDir {
    dir: PathBuf,
    threads: Mutex<()>,
}

/// Exclusive access to the state directory; released when dropped.
pub struct StateLock<'a> {
    dir: &'a Path,
    _threads: MutexGuard<'a, ()>,
    /// Closing the file releases the advisory lock.
    _file: Option<File>,
}

impl StateDir {
    /// Opens (creating it if needed) the state directory.
    pub fn open(dir: &Path) -> SdkResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SdkError::storage(&format!("cannot create {}", dir.display()), e))?;
        Ok(Self {
            dir: dir.to_owned(),
            threads: Mutex::new(()),
        })
    }

    pub fn lock(&self) -> SdkResult<StateLock<'_>> {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SdkError::storage(&format!("cannot open {}", path.display()), e))?;
        let file = match file.lock() {
            Ok(()) => Some(file),
            // Some file systems have no locks; threads of this process are still excluded.
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => None,
            Err(e) => {
                return Err(SdkError::storage(
                    &format!("cannot lock {}", path.display()),
                    e,
                ));
            }
        };
        Ok(StateLock {
            dir: &self.dir,
            _threads: threads,
            _file: file,
        })
    }
}

impl StateLock<'_> {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a JSON file; `None` when it does not exist yet.
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> SdkResult<Option<T>> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                SdkError::storage(
                    &format!("{} is damaged (delete it to start over)", path.display()),
                    e,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SdkError::storage(
                &format!("cannot read {}", path.display()),
                e,
            )),
        }
    }

    /// Removes a file; nothing to do when it does not exist.
    pub fn remove(&self, name: &str) -> SdkResult<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&path);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SdkError::storage(
                &format!("cannot remove {}", path.display()),
                e,
            )),
        }
    }

    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> SdkResult<()> {
        let bytes = serde_json::to_vec_pretty(value)
            .map_err(|e| SdkError::storage("cannot encode local state", e))?;
        write_atomic(&self.path(name), &bytes)
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> SdkResult<()> {
    let fail =
        |e: std::io::Error| SdkError::storage(&format!("cannot write {}", path.display()), e);
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = File::create(&tmp).map_err(fail)?;
        f.write_all(bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    sync_dir(path);
    Ok(())
}

/// Makes a rename or removal in `path`'s directory durable. Directories cannot be opened for
/// syncing on every platform, hence the best effort.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_replaced_whole_and_damage_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(&tmp.path().join("nested")).unwrap();
        let lock = state.lock().unwrap();
        assert_eq!(lock.read::<Vec<u32>>(USAGE).unwrap(), None);
        lock.write(USAGE, &vec![1u32, 2]).unwrap();
        lock.write(USAGE, &vec![3u32]).unwrap();
        assert_eq!(lock.read::<Vec<u32>>(USAGE).unwrap(), Some(vec![3]));
        assert!(!lock.path("usage.json.tmp").exists());
        std::fs::write(lock.path(USAGE), b"{not json").unwrap();
        let e = lock.read::<Vec<u32>>(USAGE).unwrap_err();
        assert_eq!(e.code, tally_proto::ErrorCode::LocalStorageFailed);
    }

    #[test]
    fn the_lock_excludes_another_handle_on_the_same_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let a = StateDir::open(tmp.path()).unwrap();
        let b = std::sync::Arc::new(StateDir::open(tmp.path()).unwrap());
        let held = a.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            let _l = b2.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "a second handle got the lock while it was held"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
