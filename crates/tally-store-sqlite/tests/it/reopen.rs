//! What is written stays in the file.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .import_license(new_license("L1", "acme", vec![item("a", 3)]))
            .await
            .unwrap();
        store.put_setting("k", "v").await.unwrap();
        store
            .admit_device(admit("d1", vec![item("a", 3)], NOW))
            .await
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(store.devices().await.unwrap().len(), 1);
    assert_eq!(
        store.licenses().await.unwrap()[0].activated_text,
        "text of L1"
    );
}
