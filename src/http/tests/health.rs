//! `GET /health/ready`: the database and an assigned, running consumer that reaches a broker,
//! and the grace a rebalance gets.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use super::support::*;
use crate::ingest::ConsumerStatus;

/// The readiness of `mode`'s store with a consumer that runs with `partitions` assigned.
async fn readiness(
    mode: Mode,
    running: bool,
    partitions: usize,
) -> (StatusCode, serde_json::Value) {
    let consumer = Arc::new(ConsumerStatus::default());
    consumer.set_running(running);
    consumer.set_assignment(
        (0..partitions)
            .map(|p| ("orders".to_owned(), p as i32))
            .collect(),
    );
    let app = TestApp::builder(mode).consumer(consumer).build().app;
    let (response, body) = get(&app, "/health/ready").await;
    let json = serde_json::from_slice(&body).expect("a JSON body");
    (response.status(), json)
}

#[tokio::test]
async fn ready_needs_the_database_and_an_assigned_running_consumer() {
    let (status, body) = readiness(Mode::Up, true, 3).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"]["consumer"]["detail"],
        "3 partitions assigned"
    );

    let (status, body) = readiness(Mode::Down, true, 3).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "failing");
    assert_eq!(body["checks"]["consumer"]["status"], "ok");

    let (status, body) = readiness(Mode::Up, true, 0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["consumer"]["status"], "failing");

    let (status, body) = readiness(Mode::Up, false, 3).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["consumer"]["detail"], "consumer not running");
}

#[tokio::test]
async fn a_rebalance_keeps_an_instance_ready_but_an_instance_never_assigned_is_not() {
    let consumer = Arc::new(ConsumerStatus::default());
    consumer.set_running(true);
    let app = TestApp::builder(Mode::Up)
        .consumer(consumer.clone())
        .build()
        .app;

    let (response, body) = get(&app, "/health/ready").await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never assigned"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        body["checks"]["consumer"]["detail"],
        "no partitions assigned"
    );

    consumer.set_assignment(vec![("orders".to_owned(), 0)]);
    consumer.set_assignment(Vec::new());
    let (response, body) = get(&app, "/health/ready").await;
    assert_eq!(response.status(), StatusCode::OK, "revoked a moment ago");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        body["checks"]["consumer"]["detail"]
            .as_str()
            .is_some_and(|detail| detail.starts_with("rebalancing")),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(5));
    assert!(!consumer.held_partitions_within(Duration::from_millis(1)));
}

#[tokio::test]
async fn no_broker_answering_makes_an_assigned_instance_not_ready_until_one_answers() {
    let consumer = Arc::new(ConsumerStatus::default());
    consumer.set_running(true);
    consumer.set_assignment(vec![("orders".to_owned(), 0)]);
    let app = TestApp::builder(Mode::Up)
        .consumer(consumer.clone())
        .build()
        .app;

    consumer.set_brokers_reachable(false);
    let (response, body) = get(&app, "/health/ready").await;
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["consumer"]["status"], "failing");
    assert_eq!(
        body["checks"]["consumer"]["detail"],
        "no Kafka broker answers (for 0 s)"
    );

    consumer.set_brokers_reachable(true);
    let (response, body) = get(&app, "/health/ready").await;
    assert_eq!(response.status(), StatusCode::OK, "a broker answers again");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        body["checks"]["consumer"]["detail"],
        "1 partitions assigned"
    );
}
