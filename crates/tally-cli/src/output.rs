//! Standard output without `println!`. A reader that stops early (`tally admin … | head -1`)
//! closes the pipe, and `println!` panics on the next write; these helpers return
//! [`StdoutClosed`] instead, which `main` ends on quietly.

use std::fmt;
use std::io::{self, Write};

/// The reader of standard output went away: nothing failed that the user should hear about.
///
/// A marker of its own rather than the `io::Error`, so that a broken pipe to a server (the
/// same `ErrorKind::BrokenPipe`) is still reported as the failure it is.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` as is and flushes, so a closed pipe is seen here and not at exit.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(closed_or_error)
}

/// Writes `text` and a newline.
pub fn line(text: impl fmt::Display) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}

fn closed_or_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// For a command that talks to no server (`tally vendor …`): any broken pipe in `e` can only be
/// its output's reader going away, so it becomes [`StdoutClosed`].
pub fn local_broken_pipe(e: anyhow::Error) -> anyhow::Error {
    let broken = e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken { StdoutClosed.into() } else { e }
}

/// Whether `e` is (or wraps) [`StdoutClosed`].
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<StdoutClosed>())
}

/// `0 devices`, `1 device`, `2 devices`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(0, "report", "reports"), "0 reports");
        assert_eq!(count(1, "report", "reports"), "1 report");
        assert_eq!(count(2, "device", "devices"), "2 devices");
    }

    #[test]
    fn only_a_broken_pipe_counts_as_closed() {
        let closed = closed_or_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_closed(&closed.context("printing the table")));
        let full = closed_or_error(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!is_closed(&full));
        let network = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed(&network), "a pipe to a server is a real failure");
        assert!(is_closed(&local_broken_pipe(network)));
        let other = anyhow::anyhow!("cannot read k.key");
        assert!(!is_closed(&local_broken_pipe(other)));
    }
}
