//! File output of the vendor tools. Content goes to a temporary file in the target's directory
//! which is then moved into place, so a crash or a full disk never leaves half a key or license.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Who may read the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Default permissions (the process umask decides).
    Shared,
    /// Owner only (mode 0600 on Unix), from the moment the file exists: secret keys.
    Private,
}

/// Whether an existing file at the target path may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Replace,
    Refuse,
}

/// Writes `contents` to `path` atomically.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    access: Access,
    existing: Existing,
) -> anyhow::Result<()> {
    let (tmp, mut file) =
        create_temp(path, access).with_context(|| format!("cannot write {}", path.display()))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    drop(file);
    let placed = written
        .map_err(anyhow::Error::from)
        .and_then(|()| place(&tmp, path, existing));
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed.with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(path);
    Ok(())
}

/// Creates a new, uniquely named temporary file next to `path`.
fn create_temp(path: &Path, access: Access) -> anyhow::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut attempts = 0;
    loop {
        let suffix = tally_crypto::random_id()?;
        let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), &suffix[..12]));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if access == Access::Private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = access;
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Moves the finished temporary file to `path`. Without replacement this is a hard link, which
/// fails atomically if `path` exists; file systems without hard links fall back to a check.
fn place(tmp: &Path, path: &Path, existing: Existing) -> anyhow::Result<()> {
    if existing == Existing::Replace {
        return Ok(fs::rename(tmp, path)?);
    }
    match fs::hard_link(tmp, path) {
        Ok(()) => {
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => bail!("the file already exists"),
        Err(_) if fs::symlink_metadata(path).is_ok() => bail!("the file already exists"),
        Err(_) => Ok(fs::rename(tmp, path)?),
    }
}

/// Makes the new directory entry durable; best effort, as not every system can sync directories.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_replaces_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.license");
        write_atomic(&path, b"one", Access::Shared, Existing::Replace).unwrap();
        write_atomic(&path, b"two", Access::Shared, Existing::Replace).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(entries(dir.path()), ["a.license"]);
    }

    #[test]
    fn refuses_to_replace_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendor.key");
        write_atomic(&path, b"one", Access::Private, Existing::Refuse).unwrap();
        let err = write_atomic(&path, b"two", Access::Private, Existing::Refuse).unwrap_err();
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "one");
        assert_eq!(entries(dir.path()), ["vendor.key"]);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendor.key");
        write_atomic(&path, b"secret", Access::Private, Existing::Refuse).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/out.license");
        let err = write_atomic(&path, b"x", Access::Shared, Existing::Replace).unwrap_err();
        assert!(format!("{err:#}").contains("out.license"), "{err:#}");
    }
}
