//! `tally admin reset-password`: a new portal password for an owner who lost theirs. It works
//! on the server's data directory (local access only, nothing over HTTP), while the server runs
//! or not, and signs every portal session out. The password is read from a prompt that does not
//! echo, or from the first line of standard input when it is not a terminal; never from an
//! argument, which other users could read in the process list.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tally_server::identity::IDENTITY_FILE;

use crate::store::{DATABASE_FILE, Location};

/// Sets the portal password of the server whose data directory is `data_dir` (else
/// `TALLY_DATA_DIR`, else `tally-data`), on its SQLite file or on `database_url`.
pub fn run(data_dir: Option<PathBuf>, database_url: Option<String>) -> anyhow::Result<()> {
    let data_dir = data_dir
        .or_else(|| {
            std::env::var_os("TALLY_DATA_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(crate::admin_config::DEFAULT_DATA_DIR));
    let location = location(&data_dir, database_url)?;
    let (password, confirm) = read_password()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = location.open().await?;
        tally_server::password_reset::reset_portal_password(
            &*store,
            Arc::new(tally_core::SystemClock),
            &password,
            &confirm,
        )
        .await
        .map_err(anyhow::Error::from)
    })?;
    crate::output::line("portal password set; every portal session was signed out")
}

/// The store of the server in `data_dir`; refuses a directory that holds no server, rather than
/// creating an empty database in the wrong place.
fn location(data_dir: &Path, database_url: Option<String>) -> anyhow::Result<Location> {
    if !data_dir.join(IDENTITY_FILE).exists() {
        bail!(
            "{} is not a Tally data directory (it has no {IDENTITY_FILE}): give the server's --data-dir",
            data_dir.display()
        );
    }
    if let Some(url) = database_url {
        return Ok(Location::Postgres(url));
    }
    let db = data_dir.join(DATABASE_FILE);
    if !db.exists() {
        bail!(
            "{} holds no database ({DATABASE_FILE}); for a server on PostgreSQL give --database-url",
            data_dir.display()
        );
    }
    Ok(Location::Sqlite(db))
}

/// The new password and its confirmation: typed twice at a prompt, or one line of stdin.
fn read_password() -> anyhow::Result<(String, String)> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let password = prompt_hidden("New portal password (at least 10 characters): ")?;
        let confirm = prompt_hidden("Repeat it: ")?;
        return Ok((password, confirm));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = without_line_end(line);
    Ok((password.clone(), password))
}

fn without_line_end(mut line: String) -> String {
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    line
}

/// Reads a line from the terminal with echo off.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    let stdin = std::io::stdin();
    #[cfg(unix)]
    let restore = {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let original = tcgetattr(&stdin).context("cannot read the terminal settings")?;
        let mut quiet = original.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)
            .context("cannot turn the terminal echo off")?;
        move || {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &original);
        }
    };
    #[cfg(not(unix))]
    let restore = || {};
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    restore();
    writeln!(stderr)?;
    read.context("cannot read the password")?;
    Ok(without_line_end(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_line_end_is_taken_off() {
        assert_eq!(without_line_end(" pass word \r\n".into()), " pass word ");
        assert_eq!(without_line_end("x".into()), "x");
    }

    #[test]
    fn a_directory_without_a_server_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = location(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("not a Tally data directory"), "{e}");
        std::fs::write(dir.path().join(IDENTITY_FILE), "{}").unwrap();
        let e = location(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("--database-url"), "{e}");
        assert!(!dir.path().join(DATABASE_FILE).exists());
    }
}
