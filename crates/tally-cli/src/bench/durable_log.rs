//! The durable-echo baseline's log: the cheapest durable acknowledgement this machine allows. A
//! request's bytes are written to a preallocated file and answered only once `fdatasync` has
//! covered them; one thread commits everything that queued up while the previous sync ran
//! (group commit, as Tally's store does). No framing, checksums or recovery: it measures what
//! durability alone costs per request (the disk's flush, the hand-off to the syncing thread and
//! back), which no durable server on the same machine can undercut. (Tried on the benchmark
//! machine, neither a minimum spacing of 100–1000 µs between syncs nor `O_DSYNC` writes instead
//! of `fdatasync` raised its rate.)

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

/// Size of the file, written in place from the start again when full (so a sync never has to
/// persist a new file size, as SQLite's rewritten log does not either).
const LOG_BYTES: u64 = 32 << 20;

/// Handle to the log; clones share its thread.
#[derive(Clone)]
pub struct DurableLog {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
}

/// What waits for the next sync.
#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    waiting: Vec<oneshot::Sender<Result<(), String>>>,
}

impl DurableLog {
    /// Creates (or overwrites) the file at `path`, allocates it fully and starts the thread.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..LOG_BYTES / zeros.len() as u64 {
            file.write_all(&zeros)?;
        }
        file.sync_all()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
        });
        let syncing = shared.clone();
        std::thread::Builder::new()
            .name("durable-echo-log".into())
            .spawn(move || run(&file, &syncing))?;
        Ok(Self { shared })
    }

    /// Completes once `bytes` are on stable storage.
    pub async fn append(&self, bytes: &[u8]) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.bytes.extend_from_slice(bytes);
            queue.waiting.push(done);
            if queue.waiting.len() == 1 {
                self.shared.work.notify_one();
            }
        }
        wait.await
            .map_err(|_| "the log thread stopped".to_owned())?
    }
}

/// The syncing thread: takes everything queued, writes it at the current offset, syncs, answers.
fn run(file: &File, shared: &Shared) {
    let mut offset = 0u64;
    loop {
        let Queue { bytes, waiting } = {
            let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            while queue.waiting.is_empty() {
                queue = shared.work.wait(queue).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::take(&mut *queue)
        };
        let len = bytes.len() as u64;
        if offset + len > LOG_BYTES {
            offset = 0;
        }
        let outcome = if len > LOG_BYTES {
            Err(format!("{len} bytes do not fit the log"))
        } else {
            file.write_all_at(&bytes, offset)
                .and_then(|()| file.sync_data())
                .map_err(|e| e.to_string())
        };
        offset += len;
        for done in waiting {
            let _ = done.send(outcome.clone());
        }
    }
}
