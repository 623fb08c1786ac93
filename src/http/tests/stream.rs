//! `GET /api/orders/stream` under the router's limits: not cut by the request timeout, no
//! concurrency slot held, ended by shutdown, bounded in number.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use tower::ServiceExt;

use super::support::*;
use crate::http::Limits;
use crate::http::routes::stream::MAX_LISTENERS;

/// Reads the stream until `needle` has arrived, failing after 5 seconds.
async fn read_until(
    body: &mut (impl futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
    seen: &mut String,
    needle: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in the stream: {seen:?}"))
            .expect("the stream is open")
            .expect("a chunk");
        seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test]
async fn the_stream_outlives_the_timeout_holds_no_slot_and_ends_at_shutdown() {
    let limits = Limits {
        request_timeout: Duration::from_millis(200),
        max_in_flight: 1,
        ..Limits::default()
    };
    let f = TestApp::builder(Mode::Up).limits(limits).build();
    let request = request(Method::GET, "/api/orders/stream");
    let response = f.app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, "retry: 3000").await;

    // Past the request timeout, with the only slot: other requests still get through...
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = get_json(&f.app, "/api/orders").await;
    assert_eq!(status, StatusCode::OK, "the open stream holds no slot");
    // ...and the stream still delivers.
    f.events.publish(&summary());
    read_until(
        &mut body,
        &mut seen,
        "event: order\ndata: {\"order_uid\":\"known-1\"",
    )
    .await;

    f.shutdown.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while body.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends at shutdown");
}

#[tokio::test]
async fn streams_are_bounded_in_number() {
    let f = test_app(Mode::Up);
    let _listeners: Vec<_> = (0..MAX_LISTENERS).map(|_| f.events.subscribe()).collect();
    let (status, body) = get_json(&f.app, "/api/orders/stream").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "overloaded");
}
