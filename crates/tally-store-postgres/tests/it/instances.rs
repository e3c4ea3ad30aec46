//! Two stores on one database behave like two server instances: each has its own pool, and
//! only the database keeps them apart.

use std::sync::Arc;

use tally_core::admission::Decision;
use tally_proto::license::LicenseType;
use tally_store::Store;
use tally_store_conformance::fixtures::{NOW, admit, item_of, new_license};
use tally_store_postgres::PostgresStore;

use crate::database::Scratch;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
async fn two_instances_admit_exactly_the_quota_between_them() {
    let scratch = Scratch::create().await;
    let first = Arc::new(PostgresStore::connect(&scratch.url()).await.unwrap());
    let second = Arc::new(PostgresStore::connect(&scratch.url()).await.unwrap());
    for license_type in [LicenseType::PerDevice, LicenseType::ConcurrentDevice] {
        let id = format!("seats-{}", license_type.as_str());
        let seats = item_of(&id, license_type, 5);
        first
            .import_license(new_license(&format!("L-{id}"), "acme", vec![seats.clone()]))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..200 {
            let store: Arc<dyn Store> = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let request = admit(&format!("device-{n}"), vec![seats.clone()], NOW);
            tasks.push(tokio::spawn(async move {
                store.admit_device(request).await.unwrap().decision
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Decision::Admit { .. }) {
                admitted += 1;
            }
        }
        assert_eq!(
            admitted, 5,
            "{license_type:?}: 5 places, 200 devices, two instances"
        );
        let used = second
            .items(NOW)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.item.id == id)
            .unwrap()
            .used;
        assert_eq!(used, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(has_test_database), ignore = "TALLY_TEST_DATABASE_URL is not set")]
async fn a_code_changed_on_one_instance_is_seen_by_the_other_at_once() {
    let scratch = Scratch::create().await;
    let first = PostgresStore::connect(&scratch.url()).await.unwrap();
    let second = PostgresStore::connect(&scratch.url()).await.unwrap();
    first
        .import_license(new_license(
            "L1",
            "acme",
            vec![item_of("a", LicenseType::PerDevice, 1)],
        ))
        .await
        .unwrap();
    // The second instance reads the code (and may keep it) before the first changes it.
    let enabled = || async {
        second
            .handshake("acme-default")
            .await
            .unwrap()
            .unwrap()
            .enabled
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    assert!(enabled().await);
    let change = tally_store::HandshakeChange {
        enabled: Some(false),
        ..Default::default()
    };
    first
        .update_handshake("acme-default", change)
        .await
        .unwrap();
    // The notification travels through PostgreSQL: a few milliseconds, not a cache lifetime.
    while enabled().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance still answers the disabled code as enabled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
