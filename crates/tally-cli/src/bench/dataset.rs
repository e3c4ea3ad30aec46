//! The registered-device data set of a scale run: many devices spread over many handshake codes,
//! written straight into the stopped server's database by the store's seeding function.

use std::path::Path;
use std::time::{Duration, Instant};

use tally_store_sqlite::seed::{SeedPlan, seed_devices};

/// Registers `devices` devices over `codes` handshake codes in the database at `db`; returns how
/// long it took.
pub fn register(db: &Path, devices: u64, codes: u32) -> anyhow::Result<Duration> {
    let started = Instant::now();
    seed_devices(
        db,
        &SeedPlan {
            devices,
            handshake_codes: codes,
            now: tally_core::Clock::now(&tally_core::SystemClock),
        },
    )?;
    Ok(started.elapsed())
}
