//! End to end: messages produced to Kafka come out of the HTTP API or the rejected table.

use std::time::Duration;

use order_service::order::canonical_json;
use order_service::tools::generator::{SEEDED_NOW, fake_order};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::common::app::TestApp;
use crate::common::rejections::recent_rejections;
use crate::common::sample::{SAMPLE, sample};
use crate::common::wait::eventually;

#[tokio::test]
async fn the_sample_order_comes_back_from_the_api() {
    let app = TestApp::spawn().await;
    app.produce(Some("b563feb7b2b84b6test"), Some(SAMPLE.as_bytes()))
        .await;

    let response = app.wait_for_order("b563feb7b2b84b6test").await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, sample());

    // The second read is a cache hit with the same bytes as a database read.
    let hit = app.get("/api/order/b563feb7b2b84b6test").await;
    assert_eq!(hit.headers()["x-cache"], "hit");
    let from_db = app
        .store
        .order_json("b563feb7b2b84b6test")
        .await
        .expect("query")
        .expect("stored");
    assert_eq!(hit.bytes().await.expect("body"), from_db);
    app.stop_and_drop().await;
}

#[tokio::test]
async fn a_broken_message_is_recorded_and_the_next_valid_one_stored() {
    let app = TestApp::spawn().await;
    let key = "same-partition";
    let valid = fake_order(&mut StdRng::seed_from_u64(1), SEEDED_NOW);
    app.produce(Some(key), Some(br#"{"order_uid": 42}"#)).await;
    app.produce(Some(key), None).await;
    app.produce(Some(key), Some(canonical_json(&valid).as_bytes()))
        .await;

    // One partition is consumed in order: once the valid order is served, both bad messages
    // before it have been recorded.
    app.wait_for_order(&valid.order_uid).await;
    let rejected = recent_rejections(&app.store, 10).await.expect("query");
    let reasons: Vec<_> = rejected
        .iter()
        .map(|r| (r.reason_code.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("empty_message", "empty message"),
            (
                "type_error",
                "type error order_uid: invalid type: integer `42`, expected a string"
            ),
        ]
    );
    let broken = &rejected[1];
    assert_eq!(broken.topic, app.args.kafka.kafka_topic);
    assert_eq!(
        broken.payload.as_deref(),
        Some(&br#"{"order_uid": 42}"#[..])
    );
    assert_eq!(rejected[0].offset, broken.offset + 1);
    assert_eq!(rejected[0].partition, broken.partition);
    assert_eq!(rejected[0].payload, None, "a tombstone has no payload");
    app.stop_and_drop().await;
}

#[tokio::test]
async fn duplicates_are_harmless_and_conflicts_rejected() {
    let app = TestApp::spawn().await;
    let order = fake_order(&mut StdRng::seed_from_u64(2), SEEDED_NOW);
    let uid = order.order_uid.clone();
    let mut changed = order.clone();
    changed.delivery.city = "Elsewhere".to_owned();
    let mut last = fake_order(&mut StdRng::seed_from_u64(3), SEEDED_NOW);
    last.order_uid = format!("{uid}-last");

    // Pretty-printed: the same order in other bytes is still the same order.
    let pretty = serde_json::to_vec_pretty(&order).expect("JSON");
    for payload in [
        canonical_json(&order).into_bytes(),
        pretty,
        canonical_json(&changed).into_bytes(),
        canonical_json(&last).into_bytes(),
    ] {
        app.produce(Some(&uid), Some(&payload)).await;
    }
    app.wait_for_order(&last.order_uid).await;

    let rejected = recent_rejections(&app.store, 10).await.expect("query");
    assert_eq!(
        rejected.len(),
        1,
        "only the conflict is rejected: {rejected:?}"
    );
    assert_eq!(rejected[0].reason_code, "conflict");
    assert!(
        rejected[0].reason.starts_with("conflict order_uid: "),
        "{}",
        rejected[0].reason
    );
    let served: order_service::order::Order = app
        .get(&format!("/api/order/{uid}"))
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(served, order, "the first version stays");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(app.store.pool())
        .await
        .expect("query");
    assert_eq!(count, 2);
    app.stop_and_drop().await;
}

#[tokio::test]
async fn a_second_instance_answers_recent_orders_from_memory() {
    let first = TestApp::spawn().await;
    first
        .produce(Some("b563feb7b2b84b6test"), Some(SAMPLE.as_bytes()))
        .await;
    first.wait_for_order("b563feb7b2b84b6test").await;

    let mut args = first.args.clone();
    args.kafka_group_id = format!("{}_second", args.kafka_group_id);
    let second = TestApp::spawn_with(args).await;
    let response = second.get("/api/order/b563feb7b2b84b6test").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cache"], "hit");
    let served: Value = response.json().await.expect("JSON");
    assert_eq!(served, sample());

    let unknown = second.get("/api/order/not-there").await;
    assert_eq!(unknown.status(), 404);
    let invalid = second.get("/api/order/not%20valid").await;
    assert_eq!(invalid.status(), 400);
    second.stop().await;
    first.stop_and_drop().await;
}

#[tokio::test]
async fn the_page_is_served() {
    let app = TestApp::spawn().await;
    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("text");
    assert!(html.contains("Get order"), "{html}");
    let ready = eventually("health", || async {
        let r = app.get("/health/live").await;
        (r.status() == 200).then_some(())
    });
    tokio::time::timeout(Duration::from_secs(5), ready)
        .await
        .expect("live");
    app.stop_and_drop().await;
}

#[test]
fn send_reports_each_failed_delivery_by_id_and_exits_non_zero() {
    // Nothing listens on port 1: every delivery times out.
    let output = crate::common::binary::command("send")
        .args(["-n", "3", "--seed", "7", "--delivery-timeout", "1s"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("RUST_LOG", "off")
        .output()
        .expect("send runs");
    assert!(!output.status.success(), "send must fail");
    assert!(output.stdout.is_empty(), "no id is printed as delivered");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failed: Vec<_> = stderr
        .lines()
        .filter(|line| line.starts_with("not delivered: "))
        .collect();
    let expected: Vec<String> = order_service::tools::generator::fake_orders(3, Some(7))
        .map(|order| order.order_uid)
        .collect();
    assert_eq!(failed.len(), 3, "{stderr}");
    for uid in &expected {
        assert!(
            stderr.contains(&format!("not delivered: {uid}: ")),
            "{uid}: {stderr}"
        );
    }
    assert!(
        stderr.contains("3 of 3 orders were not delivered"),
        "{stderr}"
    );
}

/// A topic the service creates starts its group at offset 0 of every partition, committed
/// before the group's first member joins, so that the first order needs no offset lookup.
#[tokio::test]
async fn a_topic_the_service_creates_starts_its_group_at_offset_zero() {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let app = TestApp::spawn().await;
    let kafka = &app.args.kafka;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..kafka.kafka_topic_partitions {
        partitions.add_partition(&kafka.kafka_topic, partition);
    }
    let group = app.args.kafka_group_id.clone();
    let brokers = kafka.kafka_brokers.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .create()
            .expect("consumer");
        reader
            .committed_offsets(partitions, Duration::from_secs(10))
            .expect("the coordinator answers OffsetFetch")
    })
    .await
    .expect("no panic");
    let offsets: Vec<Offset> = committed.elements().iter().map(|e| e.offset()).collect();
    assert_eq!(
        offsets,
        vec![Offset::Offset(0); kafka.kafka_topic_partitions as usize]
    );
    app.stop_and_drop().await;
}
