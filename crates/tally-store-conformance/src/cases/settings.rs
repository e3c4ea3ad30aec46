//! Server settings: a small key/value table.

use std::sync::Arc;

use tally_store::Store;

pub async fn settings_are_upserted(store: Arc<dyn Store>) {
    assert_eq!(store.get_setting("k").await.unwrap(), None);
    store.put_setting("k", "one").await.unwrap();
    store.put_setting("k", "two").await.unwrap();
    assert_eq!(
        store.get_setting("k").await.unwrap().as_deref(),
        Some("two")
    );
}

/// Each key keeps its own value, whatever the text: empty, multi-line, non-ASCII or large.
pub async fn settings_hold_any_text_per_key(store: Arc<dyn Store>) {
    let large = "0123456789abcdef".repeat(1 << 16);
    let values = [
        ("empty", String::new()),
        (
            "lines",
            "first\r\nsecond\n\ttabbed \u{1b}[0m escape".to_string(),
        ),
        ("unicode ✓ é", "ünïcødé ✓ 🦀".to_string()),
        ("large", large),
    ];
    for (key, value) in &values {
        store.put_setting(key, value).await.unwrap();
    }
    for (key, value) in &values {
        assert_eq!(
            store.get_setting(key).await.unwrap().as_deref(),
            Some(value.as_str()),
            "{key}"
        );
    }
    assert_eq!(
        store.get_setting("Empty").await.unwrap(),
        None,
        "keys are exact"
    );
}
