//! The store against the real PostgreSQL: migrations and the duplicate policy.

use order_service::store::{SaveOutcome, Store};

use crate::common::database::{create_migrated, database_url, drop_database};
use crate::common::names::unique;
use crate::common::rejections::record_rejection_at;
use crate::common::sample::{SAMPLE, sample};

/// A migrated database of the test's own, and its URL.
pub async fn fresh_store() -> (Store, String) {
    let url = database_url(&unique("ordertest"));
    (create_migrated(&url).await, url)
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
async fn the_duplicate_policy_compares_parsed_json() {
    use order_service::store::{MessageOrigin, NewOrder};

    let (store, url) = fresh_store().await;
    let uid = "b563feb7b2b84b6test";
    let compact = sample();
    // serde_json's Value sorts keys: the same order in other bytes.
    let reordered = serde_json::to_string(&compact).expect("JSON");
    let changed = SAMPLE.replace("Kiryat Mozkin", "Haifa");
    async fn save(store: &Store, json: &str, offset: i64) -> Vec<SaveOutcome> {
        let order = NewOrder {
            uid: "b563feb7b2b84b6test",
            json,
            origin: MessageOrigin {
                topic: "orders",
                partition: 0,
                offset,
                key: None,
                payload: None,
            },
        };
        store
            .save_batch(&[order], &[])
            .await
            .expect("save")
            .outcomes
    }
    assert_eq!(save(&store, SAMPLE, 0).await, [SaveOutcome::Stored]);
    assert_eq!(save(&store, &reordered, 1).await, [SaveOutcome::Duplicate]);
    assert_eq!(save(&store, &changed, 2).await, [SaveOutcome::Conflict]);
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

#[tokio::test]
async fn replay_stores_what_now_passes_and_keeps_the_rest() {
    use order_service::order::{RejectKind, Rejection};
    use order_service::store::ReplayFilter;
    use order_service::tools::replay::{ReplaySummary, replay};

    let (store, url) = fresh_store().await;
    // A valid order rejected under an older, stricter contract, and a still broken one.
    let old_rule = Rejection::field(RejectKind::InvalidValue, "locale", "must be ru");
    let broken = Rejection::message(RejectKind::NotObject, "got an array");
    for (offset, payload, rejection) in [
        (7, SAMPLE.as_bytes(), &old_rule),
        (8, b"[1]".as_slice(), &broken),
    ] {
        record_rejection_at(&store, offset, payload, rejection).await;
    }
    let mut report = Vec::new();
    let summary = replay(&store, &ReplayFilter::all(), false, &mut report)
        .await
        .expect("replay");
    let report = String::from_utf8(report).expect("text");
    assert_eq!(
        summary,
        ReplaySummary {
            checked: 2,
            stored: 1,
            still_rejected: 1,
            ..ReplaySummary::default()
        },
        "{report}"
    );
    assert!(
        report.contains("stored as order b563feb7b2b84b6test"),
        "{report}"
    );
    assert!(report.contains("still rejected: not an object"), "{report}");
    assert!(
        store
            .order_json("b563feb7b2b84b6test")
            .await
            .expect("query")
            .is_some()
    );

    // Replayed rejections are not replayed again; the broken one still waits.
    let again = replay(&store, &ReplayFilter::all(), false, &mut Vec::new())
        .await
        .expect("replay");
    assert_eq!((again.checked, again.stored), (1, 0));
    let first_id: i64 = sqlx::query_scalar(r#"SELECT id FROM rejected WHERE "offset" = 7"#)
        .fetch_one(store.pool())
        .await
        .expect("query");
    let error = replay(&store, &ReplayFilter::one(first_id), false, &mut Vec::new())
        .await
        .expect_err("already replayed");
    assert!(error.to_string().contains("replayed already"), "{error}");
    store.pool().close().await;
    drop_database(&url).await;
}

#[tokio::test]
async fn a_batch_follows_the_duplicate_policy_inside_itself() {
    use order_service::store::{MessageOrigin, NewOrder};

    let (store, url) = fresh_store().await;
    let origin = |offset| MessageOrigin {
        topic: "orders",
        partition: 0,
        offset,
        key: None,
        payload: Some(b"raw".as_slice()),
    };
    let a = SAMPLE.to_owned();
    let a_changed = SAMPLE.replace("Kiryat Mozkin", "Haifa");
    let b = SAMPLE.replace("b563feb7b2b84b6test", "second-order");
    let new = |uid, json, offset| NewOrder {
        uid,
        json,
        origin: origin(offset),
    };
    let first = store
        .save_batch(
            &[
                new("b563feb7b2b84b6test", &a, 0),
                new("b563feb7b2b84b6test", &a, 1),
                new("b563feb7b2b84b6test", &a_changed, 2),
                new("second-order", &b, 3),
            ],
            &[],
        )
        .await
        .expect("batch");
    use SaveOutcome::*;
    assert_eq!(first.outcomes, [Stored, Duplicate, Conflict, Stored]);
    let conflicting: Vec<usize> = first.conflicts.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        conflicting,
        [2],
        "the batch returns the conflict it recorded"
    );

    // Against what an earlier batch stored.
    let second = store
        .save_batch(
            &[
                new("second-order", &b, 4),
                new("second-order", &b.replace("Mascaras", "Mascara"), 5),
            ],
            &[],
        )
        .await
        .expect("batch");
    assert_eq!(second.outcomes, [Duplicate, Conflict]);

    let conflicts: Vec<i64> = sqlx::query_scalar(
        r#"SELECT "offset" FROM rejected WHERE reason_code = 'conflict' ORDER BY 1"#,
    )
    .fetch_all(store.pool())
    .await
    .expect("query");
    assert_eq!(conflicts, [2, 5]);
    let kept: serde_json::Value = serde_json::from_slice(
        &store
            .order_json("b563feb7b2b84b6test")
            .await
            .expect("query")
            .expect("stored"),
    )
    .expect("JSON");
    assert_eq!(
        kept,
        serde_json::from_str::<serde_json::Value>(&a).expect("JSON")
    );
    store.pool().close().await;
    drop_database(&url).await;
}
