//! Argon2 off the async workers. One hash takes about 0.1 s of a core: run on the request path it
//! would hold an async worker that long, and a handful of concurrent ones would stall every
//! request. So each hash runs on tokio's blocking threads, and a semaphore lets only a few run at
//! once, so that hashing never takes every core either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Most Argon2 runs at once (fewer on a machine with fewer cores); each also takes 19 MiB.
const MAX_CONCURRENT: usize = 2;

/// Bounded, off-worker Argon2 hashing and verification.
pub struct Argon2Pool {
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

impl Argon2Pool {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores.clamp(1, MAX_CONCURRENT))),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hashes a new password with a random salt.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches the stored hash. A damaged hash never matches.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, String> {
        let (password, stored) = (password.to_owned(), stored.to_owned());
        let verifications = Arc::clone(&self.verifications);
        self.run(move || {
            verifications.fetch_add(1, Ordering::Relaxed);
            verify_now(&password, &stored)
        })
        .await
    }

    /// Argon2 verifications run since the start.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on a blocking thread once a permit is free. The permit travels with the work,
    /// so a request that gives up waiting (its client went away) does not free it early.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| format!("the Argon2 pool is closed: {e}"))?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| format!("an Argon2 task failed: {e}"))
    }
}

fn hash_now(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn verify_now(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            tracing::error!("a stored password hash is damaged");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_the_right_password_and_are_counted() {
        let pool = Argon2Pool::new();
        let h = pool.hash("s3cret").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(pool.verifications(), 0, "hashing is not a verification");
        assert!(pool.verify("s3cret", &h).await.unwrap());
        assert!(!pool.verify("S3cret", &h).await.unwrap());
        assert!(!pool.verify("s3cret", "not a hash").await.unwrap());
        assert_eq!(pool.verifications(), 3);
    }

    #[tokio::test]
    async fn no_more_than_the_permits_run_at_once() {
        let pool = Arc::new(Argon2Pool::new());
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= MAX_CONCURRENT as u64);
    }
}
