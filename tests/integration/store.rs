//! The store against the real PostgreSQL: migrations and the duplicate policy.

use order_service::store::{SaveOutcome, Store};
use std::time::Duration;

use crate::helpers::{SAMPLE, drop_database, fresh_args};

async fn fresh_store() -> (Store, String) {
    let url = fresh_args().database.database_url;
    Store::create_database_if_missing(&url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable ({e}); start it with `make all-up`")
        });
    let store = Store::connect_lazy(&url, Duration::from_secs(5)).expect("pool");
    store.migrate().await.expect("migrations apply");
    (store, url)
}

#[tokio::test]
async fn migrations_apply_twice() {
    let (store, url) = fresh_store().await;
    store.migrate().await.expect("a second run is a no-op");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'
         AND tablename IN ('orders', 'rejected') ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .expect("query");
    assert_eq!(tables, ["orders", "rejected"]);
    store.pool().close().await;
    drop_database(&url).await;
}

#[tokio::test]
async fn the_duplicate_policy() {
    let (store, url) = fresh_store().await;
    let uid = "b563feb7b2b84b6test";
    let compact: serde_json::Value = serde_json::from_str(SAMPLE).expect("JSON");
    let reordered = serde_json::to_vec(&compact).expect("JSON"); // keys sorted: other bytes
    assert_eq!(
        store
            .save_order(uid, SAMPLE.as_bytes())
            .await
            .expect("save"),
        SaveOutcome::Stored
    );
    assert_eq!(
        store.save_order(uid, &reordered).await.expect("save"),
        SaveOutcome::Duplicate
    );
    let changed = SAMPLE.replace("Kiryat Mozkin", "Haifa");
    assert_eq!(
        store
            .save_order(uid, changed.as_bytes())
            .await
            .expect("save"),
        SaveOutcome::Conflict
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&store.order_json(uid).await.expect("query").expect("stored"))
            .expect("JSON");
    assert_eq!(
        kept, compact,
        "a conflict leaves the stored order as it was"
    );
    store.pool().close().await;
    drop_database(&url).await;
}
