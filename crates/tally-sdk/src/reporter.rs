//! Background delivery of usage reports: a thread that flushes at start and then every interval
//! (3 minutes by default), so a host application only records usage.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::Client;

/// How often reports are sent unless configured.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(180);

/// Stops the reporter thread when dropped, after a last flush so that usage recorded just before
/// shutdown is not left for the next start. Dropping waits for that flush, which takes at most
/// the configured timeout per server when none answers.
pub struct Reporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    pub(crate) fn spawn(client: Arc<Client>, every: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tally-reporter".into())
            .spawn(move || {
                loop {
                    if let Err(e) = client.flush() {
                        tracing::debug!(error = %e, "usage reports kept for the next attempt");
                    }
                    match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                let _ = client.flush();
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
