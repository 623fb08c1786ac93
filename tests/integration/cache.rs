//! The cache of ready answers on the real service: `ETag` and `304` from memory and from
//! PostgreSQL alike, an order that was just answered 404 served as soon as it is stored,
//! HTTP answering while the warm-up still waits for the database, and reads of the stored
//! `body` beside orders stored before there was one.

use std::time::Duration;

use order_service::startup::Application;
use order_service::store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::app::TestApp;
use crate::common::database::drop_database;
use crate::common::sample::{SAMPLE, SAMPLE_UID, sample};

#[tokio::test]
async fn an_order_has_one_etag_from_memory_and_from_postgres_and_revalidates_with_304() {
    let first = TestApp::spawn().await;
    // Asked before it exists: 404, remembered briefly; stored a moment later: served at once
    // (ingest clears the memory of the 404 when it caches the order).
    let absent = first.get(&format!("/api/order/{SAMPLE_UID}")).await;
    assert_eq!(absent.status(), 404);
    assert!(absent.headers().get("etag").is_none());
    assert!(absent.headers().get("cache-control").is_none());
    first
        .produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes()))
        .await;
    let response = first.wait_for_order(SAMPLE_UID).await;
    let etag = response.headers()["etag"].clone();
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let body = response.bytes().await.expect("body");

    let path = format!("/api/order/{SAMPLE_UID}");
    let revalidated = first
        .http
        .get(format!("{}{path}", first.base))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("answered");
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"], etag);
    assert_eq!(revalidated.headers()["x-cache"], "hit");
    assert!(revalidated.bytes().await.expect("body").is_empty());

    // A second instance with its cache off reads PostgreSQL: the same bytes and tag.
    let mut args = first.args.clone();
    args.kafka_group_id = format!("{}_second", args.kafka_group_id);
    args.cache_max_bytes = 0;
    let second = TestApp::spawn_with(args).await;
    let from_db = second.get(&path).await;
    assert_eq!(from_db.status(), 200);
    assert_eq!(from_db.headers()["x-cache"], "miss");
    assert_eq!(
        from_db.headers()["etag"],
        etag,
        "the tag is the bytes' hash"
    );
    assert_eq!(from_db.bytes().await.expect("body"), body);
    let revalidated = second
        .http
        .get(format!("{}{path}", second.base))
        .header(
            "if-none-match",
            format!("W/{}", etag.to_str().expect("ASCII")),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(revalidated.status(), 304, "weak comparison");
    second.stop().await;
    first.stop_and_drop().await;
}

#[tokio::test]
async fn http_answers_while_the_warm_up_waits_for_the_database() {
    let first = TestApp::spawn().await;
    first
        .produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes()))
        .await;
    first.wait_for_order(SAMPLE_UID).await;
    // The same group: the restarted service has nothing left to consume, so the order can
    // reach its cache only through the warm-up.
    let args = first.args.clone();
    first.stop().await;

    // Hold a lock that the warm-up's read of `orders` must wait for.
    let locker =
        Store::connect_lazy(&args.database.database_url, Duration::from_secs(5)).expect("pool");
    let mut lock = locker.pool().begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("the lock");

    let app = tokio::time::timeout(Duration::from_secs(20), Application::build(&args))
        .await
        .expect("the service is built without waiting for the warm-up")
        .expect("the service builds");
    let base = format!("http://{}", app.addr());
    let warmed = app.warmed();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .expect("HTTP answers during the warm-up");
    assert_eq!(live.status(), 200);
    let invalid = http
        .get(format!("{base}/api/order/not%20valid"))
        .send()
        .await
        .expect("HTTP answers during the warm-up");
    assert_eq!(invalid.status(), 400);
    assert!(
        !warmed.is_finished(),
        "the warm-up still waits for the lock"
    );

    lock.rollback().await.expect("the lock is released");
    tokio::time::timeout(Duration::from_secs(30), warmed.clone().wait())
        .await
        .expect("the warm-up finishes once the database answers");
    let response = http
        .get(format!("{base}/api/order/{SAMPLE_UID}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-cache"],
        "hit",
        "loaded by the warm-up"
    );
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, sample());

    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");
    locker.pool().close().await;
    drop_database(&args.database.database_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_that_arrive_together_get_their_own_answers_from_the_batched_lookup() {
    use order_service::order::canonical_json;
    use order_service::store::BatchedLookup;
    use order_service::store::OrderLookup;

    let app = TestApp::spawn().await;
    let orders: Vec<_> = order_service::tools::generator::fake_orders(200, Some(11)).collect();
    // As stored before orders had a `body`: each is re-encoded from its document.
    for order in &orders {
        sqlx::query("INSERT INTO orders (order_uid, doc) VALUES ($1, $2::jsonb)")
            .bind(&order.order_uid)
            .bind(canonical_json(order))
            .execute(app.store.pool())
            .await
            .expect("stored");
    }
    let lookup = std::sync::Arc::new(BatchedLookup::spawn(app.store.clone()));
    let mut asked: Vec<(String, Option<bytes::Bytes>)> = orders
        .iter()
        .map(|order| (order.order_uid.clone(), Some(canonical_json(order).into())))
        .collect();
    asked.extend((0..100).map(|i| (format!("absent-{i}"), None)));
    let lookups: Vec<_> = asked
        .iter()
        .map(|(uid, _)| {
            let lookup = lookup.clone();
            let uid = uid.clone();
            tokio::spawn(async move { lookup.find(&uid).await })
        })
        .collect();
    for ((uid, expected), lookup) in asked.into_iter().zip(lookups) {
        let found = lookup.await.expect("no panic").expect("no error");
        assert_eq!(found, expected, "{uid}");
    }
    app.stop_and_drop().await;
}

#[tokio::test]
async fn a_read_answers_the_stored_body_and_re_encodes_an_order_stored_without_one() {
    use order_service::order::canonical_json;

    let app = TestApp::spawn().await;
    let mut orders = order_service::tools::generator::fake_orders(2, Some(12));
    let (with_body, without) = (orders.next().expect("one"), orders.next().expect("two"));
    // A body that is not what re-encoding the document gives (the same JSON, pretty-printed):
    // answered as it is, it shows that the read copies the body.
    let pretty = serde_json::to_string_pretty(&with_body).expect("JSON");
    sqlx::query("INSERT INTO orders (order_uid, doc, body) VALUES ($1, $2::jsonb, $2)")
        .bind(&with_body.order_uid)
        .bind(&pretty)
        .execute(app.store.pool())
        .await
        .expect("stored with a body");
    sqlx::query("INSERT INTO orders (order_uid, doc) VALUES ($1, $2::jsonb)")
        .bind(&without.order_uid)
        .bind(serde_json::to_string_pretty(&without).expect("JSON"))
        .execute(app.store.pool())
        .await
        .expect("stored without a body");

    for (uid, expected) in [
        (&with_body.order_uid, pretty.into_bytes()),
        (&without.order_uid, canonical_json(&without).into_bytes()),
    ] {
        let response = app.get(&format!("/api/order/{uid}")).await;
        assert_eq!(response.status(), 200, "{uid}");
        assert_eq!(response.headers()["x-cache"], "miss", "{uid}");
        let body = response.bytes().await.expect("body");
        assert_eq!(body.as_ref(), expected.as_slice(), "{uid}");
    }
    app.stop_and_drop().await;
}
