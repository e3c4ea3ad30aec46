//! Keeps the cache of handshake codes and organizations right across instances: every write
//! that can change them sends `NOTIFY tally_config` in its transaction (PostgreSQL delivers it at
//! commit), and each instance's listener clears its cache when one arrives. While the listener is
//! not connected the cache is off, so no instance answers from a cache it cannot keep fresh.

use std::sync::Arc;
use std::time::Duration;

use tally_store::cache::ReadCache;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel writers notify.
pub const CHANNEL: &str = "tally_config";

/// The statement a writer runs in its transaction after changing codes or organizations.
pub const NOTIFY: &str = "NOTIFY tally_config";

/// Listens on its own connection (not one of the pool's) for as long as the store lives;
/// reconnects after a failure, the cache off meanwhile.
pub fn spawn(config: tokio_postgres::Config, cache: Arc<ReadCache>) {
    let weak = Arc::downgrade(&cache);
    drop(cache);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let Some(cache) = weak.upgrade() else {
                return;
            };
            match listen(&config, &cache).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => {
                    tracing::warn!(error = %e, "the cache listener lost PostgreSQL; cache off until it reconnects");
                }
            }
            cache.set_off(true);
            drop(cache);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
}

/// One connection's life: `LISTEN`, cache on, clear on every notification. Returns when the
/// connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    cache: &ReadCache,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (told, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if told.send(()).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Listening from here on: what was cached before may have changed unseen.
    cache.set_off(false);
    while notifications.recv().await.is_some() {
        cache.clear();
    }
    drop(client);
    match pump.await {
        Ok(outcome) => outcome,
        Err(_) => Ok(()),
    }
}
