//! Admission across several candidates.

use tally_core::admission::{Decision, Refusal};
use tally_store::Store;

use super::{NOW, admit, item, new_license, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_candidate_is_full_the_second_serves() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (item("a", 1), item("b", 2));
    store
        .import_license(new_license("L1", "acme", vec![a.clone(), b.clone()]))
        .await
        .unwrap();
    let mut indexes = Vec::new();
    for d in ["d1", "d2", "d3", "d4"] {
        let got = store
            .admit_device(admit(d, vec![a.clone(), b.clone()], NOW))
            .await
            .unwrap();
        indexes.push(match got.decision {
            Decision::Admit { index, .. } => Some(index),
            Decision::Refuse(r) => {
                assert_eq!(r, Refusal::DeviceQuota);
                None
            }
        });
    }
    assert_eq!(indexes, [Some(0), Some(1), Some(1), None]);
    let mut held: Vec<(String, String)> = store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.device_uuid, d.item_id))
        .collect();
    held.sort();
    let expected = [("d1", "a"), ("d2", "b"), ("d3", "b")].map(|(d, i)| (d.into(), i.into()));
    assert_eq!(held, expected);
    let used: Vec<u64> = store
        .items(NOW)
        .await
        .unwrap()
        .iter()
        .map(|i| i.used)
        .collect();
    assert_eq!(used, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_registration_keeps_its_first_contact_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .import_license(new_license("L1", "acme", vec![item("a", 2)]))
        .await
        .unwrap();
    let mut named = admit("d1", vec![item("a", 2)], NOW);
    named.friendly_name = Some("Front desk".into());
    store.admit_device(named).await.unwrap();
    store
        .admit_device(admit("d2", vec![item("a", 2)], NOW + 5))
        .await
        .unwrap();
    store
        .admit_device(admit("d1", vec![item("a", 2)], NOW + 60))
        .await
        .unwrap();
    let devices = store.devices().await.unwrap();
    let order: Vec<&str> = devices.iter().map(|d| d.device_uuid.as_str()).collect();
    assert_eq!(order, ["d1", "d2"], "most recent contact first");
    let d1 = &devices[0];
    assert_eq!(
        (d1.first_seen, d1.last_seen, d1.friendly_name.as_deref()),
        (NOW, NOW + 60, Some("Front desk"))
    );
    assert_eq!(d1.active_until, NOW + 60 + 86_400);
}
