//! `GET /metrics`: a stored and a rejected message move the right counters by the right
//! amounts; HTTP requests are counted by route (the template, or `unmatched`).

use std::collections::HashMap;

use crate::common::app::TestApp;
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::common::wait::eventually;

/// `series -> value` of a Prometheus text exposition (`# ` lines skipped).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The metrics now.
pub async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.expect("a body"))
}

/// How much `series` moved from `before` to `after` (a series not there yet counts as 0).
fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

const STORED: &str = "orders_stored_total";
const REJECTED: &str = r#"orders_rejected_total{reason="malformed_json"}"#;
const CONSUMED: &str = "orders_consumed_total";
const BATCHES: &str = "ingest_batches_total";
const ORDER_200: &str =
    r#"http_requests_total{route="/api/order/{order_uid}",method="GET",status="200"}"#;
const UNMATCHED_404: &str = r#"http_requests_total{route="unmatched",method="GET",status="404"}"#;
const HITS: &str = "cache_hits_total";

#[tokio::test]
async fn a_stored_and_a_rejected_message_move_their_counters() {
    let _one_at_a_time = crate::COUNTERS.lock().await;
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;

    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.produce(Some("broken"), Some(b"{not json")).await;

    let after = eventually(
        "one stored and one rejected message in /metrics",
        || async {
            let now = scrape(&app).await;
            (delta(&before, &now, STORED) >= 1.0 && delta(&before, &now, REJECTED) >= 1.0)
                .then_some(now)
        },
    )
    .await;
    println!(
        "deltas: stored {}, rejected(malformed_json) {}, consumed {}, batches {}",
        delta(&before, &after, STORED),
        delta(&before, &after, REJECTED),
        delta(&before, &after, CONSUMED),
        delta(&before, &after, BATCHES),
    );
    assert_eq!(delta(&before, &after, STORED), 1.0, "orders_stored_total");
    assert_eq!(delta(&before, &after, REJECTED), 1.0, "{REJECTED}");
    assert_eq!(
        delta(&before, &after, CONSUMED),
        2.0,
        "orders_consumed_total"
    );
    assert_eq!(
        delta(&before, &after, "orders_duplicates_total"),
        0.0,
        "no duplicates"
    );
    let batches = delta(&before, &after, BATCHES);
    assert!((1.0..=2.0).contains(&batches), "{batches} batches");
    assert_eq!(
        delta(&before, &after, "ingest_batch_size_sum"),
        2.0,
        "two messages in the batches"
    );
    assert!(
        after
            .keys()
            .any(|series| series
                .starts_with(r#"db_query_duration_seconds_count{query="save_batch"}"#)),
        "the batch write is timed"
    );
    app.stop_and_drop().await;
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template() {
    let _one_at_a_time = crate::COUNTERS.lock().await;
    let app = TestApp::spawn().await;
    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.wait_for_order(SAMPLE_UID).await;
    let before = scrape(&app).await;

    for _ in 0..3 {
        let response = app.get(&format!("/api/order/{SAMPLE_UID}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-cache"], "hit");
    }
    let response = app.get("/no/such/path-7f3a").await;
    assert_eq!(response.status(), 404);
    let after = scrape(&app).await;

    assert_eq!(delta(&before, &after, ORDER_200), 3.0, "{ORDER_200}");
    assert_eq!(delta(&before, &after, HITS), 3.0, "cache_hits_total");
    assert_eq!(
        delta(&before, &after, UNMATCHED_404),
        1.0,
        "{UNMATCHED_404}"
    );
    assert!(
        !after.keys().any(|series| series.contains("path-7f3a")),
        "a raw path must never become a label"
    );
    let duration_count = format!(
        "http_request_duration_seconds_count{}",
        ORDER_200.trim_start_matches("http_requests_total")
    );
    assert_eq!(
        delta(&before, &after, &duration_count),
        3.0,
        "{duration_count}"
    );
    assert!(
        after.contains_key("cache_entries"),
        "cache gauges are exported"
    );
    assert!(
        after["cache_bytes"] > 0.0,
        "the cached order weighs something"
    );
    app.stop_and_drop().await;
}
