//! Group commit for the hot writes (admissions and usage reports): one task takes the writes
//! waiting in its queue and runs them in one transaction, then answers each. A quota counter or
//! an hourly usage row is then locked once per batch instead of once per request, and one
//! commit (one WAL flush) acknowledges them all. Nothing is answered before its commit.
//!
//! A batch that fails is rolled back whole; when PostgreSQL aborted it to keep it apart from
//! another instance's transaction it runs again, otherwise each write runs alone, so that one
//! bad write fails alone.

use deadpool_postgres::Pool;
use tally_store::{Admission, AdmitRequest, ReportBatch, ReportResult, StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::connection::{self, backend, lost_a_race};
use crate::{devices, reports};

/// Batches in flight at once. One: on two cores, a second or third writer only split the waiting
/// writes into smaller batches that cost PostgreSQL more per write (measured in
/// docs/performance.md).
const WRITERS: usize = 1;

/// Groups of usage-counter stripes an instance picks its writers' stripes from.
const STRIPE_GROUPS: u32 = 8;

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// Writes waiting at most; a caller waits for room beyond that.
const QUEUE: usize = 4096;

/// Times a batch, or a write alone, that lost a race is run again.
const ATTEMPTS: u32 = 8;

/// One write and whom to answer.
pub enum Job {
    Admit(AdmitRequest, oneshot::Sender<StoreResult<Admission>>),
    Report(ReportBatch, oneshot::Sender<StoreResult<ReportResult>>),
}

/// What a write produced, before it is answered.
enum Done {
    Admit(Admission),
    Report(ReportResult),
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the task on connections of `pool`.
    pub fn start(pool: Pool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
        // Stripes of this process's writers: another instance on the same database most
        // likely adds to other rows (see `reports::add_counters`); sharing one only means waiting.
        let first = (std::process::id() % STRIPE_GROUPS) as usize * WRITERS;
        for writer in 0..WRITERS {
            let stripe = i16::try_from(first + writer).unwrap_or_default();
            tokio::spawn(run(pool.clone(), queue.clone(), stripe));
        }
        Self { jobs }
    }

    pub async fn admit(&self, request: AdmitRequest) -> StoreResult<Admission> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Admit(request, tx)).await?;
        rx.await.map_err(|_| stopped())?
    }

    pub async fn report(&self, batch: ReportBatch) -> StoreResult<ReportResult> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Report(batch, tx)).await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn send(&self, job: Job) -> StoreResult<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::failure("the PostgreSQL writer task has stopped")
}

/// Takes the writes waiting (the first writer free takes them), runs them, answers; until the
/// store is dropped.
async fn run(
    pool: Pool,
    queue: std::sync::Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    stripe: i16,
) {
    loop {
        let jobs = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = Vec::with_capacity(MAX_BATCH);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        match with_retries(&pool, &jobs, stripe).await {
            Ok(done) => answer(jobs, done.into_iter().map(Ok)),
            Err(e) if jobs.len() == 1 => answer(jobs, std::iter::once(Err(e))),
            Err(e) => {
                tracing::debug!(error = %e, writes = jobs.len(), "a batch failed; each write runs alone");
                for job in jobs {
                    let outcome = with_retries(&pool, std::slice::from_ref(&job), stripe)
                        .await
                        .map(|mut done| done.remove(0));
                    answer(vec![job], std::iter::once(outcome));
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction, again while it lost a race.
async fn with_retries(pool: &Pool, jobs: &[Job], stripe: i16) -> StoreResult<Vec<Done>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match in_one_transaction(pool, jobs, stripe).await {
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => {
                tracing::debug!(error = %e, attempt, "a batch lost a race; running it again");
            }
            other => return other,
        }
    }
}

async fn in_one_transaction(pool: &Pool, jobs: &[Job], stripe: i16) -> StoreResult<Vec<Done>> {
    let mut client = connection::client(pool).await?;
    let tx = client
        .transaction()
        .await
        .map_err(backend("begin a transaction"))?;
    let mut done = Vec::with_capacity(jobs.len());
    let mut next = 0;
    while let Some(job) = jobs.get(next) {
        match job {
            Job::Admit(..) => {
                let run: Vec<&AdmitRequest> = jobs[next..]
                    .iter()
                    .map_while(|j| match j {
                        Job::Admit(request, _) => Some(request),
                        Job::Report(..) => None,
                    })
                    .collect();
                next += run.len();
                let admitted = devices::admit_all(&tx, &run).await?;
                done.extend(admitted.into_iter().map(Done::Admit));
            }
            // Reports waiting next to each other are recorded together, a statement per kind
            // of row for them all (admissions likewise, see `devices::admit_all`).
            Job::Report(..) => {
                let run: Vec<&ReportBatch> = jobs[next..]
                    .iter()
                    .map_while(|j| match j {
                        Job::Report(batch, _) => Some(batch),
                        Job::Admit(..) => None,
                    })
                    .collect();
                next += run.len();
                let recorded = reports::record_all(&tx, &run, stripe).await?;
                done.extend(recorded.into_iter().map(Done::Report));
            }
        }
    }
    tx.commit().await.map_err(backend("commit"))?;
    Ok(done)
}

fn answer(jobs: Vec<Job>, outcomes: impl Iterator<Item = StoreResult<Done>>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        // A caller that went away no longer waits for its answer.
        match job {
            Job::Admit(_, reply) => {
                let _ = reply.send(outcome.and_then(|d| match d {
                    Done::Admit(a) => Ok(a),
                    Done::Report(_) => {
                        Err(StoreError::failure("an admission got a report's answer"))
                    }
                }));
            }
            Job::Report(_, reply) => {
                let _ = reply.send(outcome.and_then(|d| match d {
                    Done::Report(r) => Ok(r),
                    Done::Admit(_) => {
                        Err(StoreError::failure("a report got an admission's answer"))
                    }
                }));
            }
        }
    }
}
