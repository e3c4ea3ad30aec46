//! The background thread a host application starts once: it renews the grant before it lapses
//! (a concurrent seat every few minutes, a per-active-device grant at midnight UTC, others
//! within a day) and sends usage reports at start and then every interval (3 minutes by
//! default), so the host only records usage and asks [`Client::check`].
//!
//! Every decision reads the client's clock, which tests move by hand; the thread looks at it
//! once per poll interval (a second unless told otherwise).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use tally_proto::UnixSeconds;

use crate::client::Client;

/// How often reports are sent unless configured.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(180);

/// How long the thread waits after a renewal no server answered before it tries again.
const RETRY_UNANSWERED_SECONDS: i64 = 30;
/// How long it waits after a server refused the renewal (the license is used up, ended, …).
const RETRY_REFUSED_SECONDS: i64 = 900;

/// Stops the background thread when dropped, after a last flush so that usage recorded just
/// before shutdown is not left for the next start. Dropping waits for that flush, which takes at
/// most the configured timeout per server when none answers.
pub struct Background {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the thread plans to do next, on the client's clock.
struct Plan {
    next_flush: UnixSeconds,
    /// After a failed renewal, when to try again (the grant's own `renew_at` otherwise).
    retry_renewal: Option<UnixSeconds>,
}

impl Background {
    pub(crate) fn spawn(
        client: Arc<Client>,
        report_every: Duration,
        poll: Duration,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = i64::try_from(report_every.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        let thread = std::thread::Builder::new()
            .name("tally-background".into())
            .spawn(move || {
                let mut plan = Plan {
                    next_flush: client.clock.now(),
                    retry_renewal: None,
                };
                loop {
                    tick(&client, &mut plan, every);
                    match stopped.recv_timeout(poll) {
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

/// One look at the clock: renew when due, flush when due.
fn tick(client: &Client, plan: &mut Plan, every: i64) {
    let now = client.clock.now();
    // Without a held grant (never authorized, or forgotten after a refusal) the thread asks
    // now, then again after the refusal's wait: a renewed license brings the product back.
    let due = match plan.retry_renewal {
        Some(at) => now >= at,
        None => client.renew_at().is_none_or(|at| now >= at),
    };
    if due {
        plan.retry_renewal = match client.authorize() {
            Ok(auth) if !auth.cached => None,
            Ok(_) => Some(now + RETRY_UNANSWERED_SECONDS),
            Err(e) => {
                tracing::warn!(error = %e, "renewing the grant failed");
                let wait = if e.server_code.is_some() {
                    RETRY_REFUSED_SECONDS
                } else {
                    RETRY_UNANSWERED_SECONDS
                };
                Some(now + wait)
            }
        };
    }
    if now >= plan.next_flush {
        if let Err(e) = client.flush() {
            tracing::debug!(error = %e, "usage reports kept for the next attempt");
        }
        plan.next_flush = now.saturating_add(every);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
