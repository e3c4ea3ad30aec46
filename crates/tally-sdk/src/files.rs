//! Crash-safe files in the state directory: written to a temporary file, flushed, renamed over
//! the old one and the directory flushed, so a crash leaves either the old or the new content.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{SdkError, SdkResult};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> SdkResult<()> {
    let fail =
        |e: std::io::Error| SdkError::storage(&format!("cannot write {}", path.display()), e);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        d.sync_all().map_err(fail)?;
    }
    Ok(())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> SdkResult<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| SdkError::storage("cannot encode local state", e))?;
    write_atomic(path, &bytes)
}

/// Reads a JSON file; `None` when it does not exist yet.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> SdkResult<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SdkError::storage(&format!("{} is damaged", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SdkError::storage(
            &format!("cannot read {}", path.display()),
            e,
        )),
    }
}
