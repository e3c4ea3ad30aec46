//! Property: under random authorizations, reports, time steps and unregistrations, no license
//! type ever gives more than it may (see [`crate::random_ops`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::test_runner::{Config, TestRunner};
use tally_store::Store;
use tokio::runtime::Handle;

use crate::random_ops::{play, regressions, scenario};

/// Random scenarios per run: enough to meet every type several times, few enough for a
/// database server.
const RANDOM_SCENARIOS: u32 = 24;

pub async fn quotas_hold_for_every_license_type(store: Arc<dyn Store>) {
    for (n, known) in regressions().iter().enumerate() {
        if let Err(e) = play(&*store, &format!("regression-{n}"), known, &mut |_, _| {
            Ok(())
        })
        .await
        {
            panic!("{e}: {known:?}");
        }
    }
    // Every scenario, shrinking ones included, plays on its own organization and item.
    let next = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: RANDOM_SCENARIOS,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = Handle::current();
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&scenario(), |s| {
            let namespace = format!("case-{}", next.fetch_add(1, Ordering::Relaxed));
            handle.block_on(play(&*store, &namespace, &s, &mut |_, _| Ok(())))
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
