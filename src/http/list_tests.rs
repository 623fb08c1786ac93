//! The list and stream handlers with a fake store: `limit` checking (default, bounds, junk),
//! the JSON shape, 503 when the database is down, and the event stream's behaviour under the
//! router's limits (not cut by the request timeout, no concurrency slot held, ended by
//! shutdown, bounded in number).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::routes::lists::DEFAULT_LIMIT;
use super::routes::stream::MAX_LISTENERS;
use super::{AppState, Limits, router_with};
use crate::events::OrderEvents;
use crate::order::OrderSummary;
use crate::store::StoreError;
use crate::store::{RecentLists, RejectedSummary};

/// A [`RecentLists`] with one order and one rejection that records the limits it is asked for.
#[derive(Default)]
pub(super) struct FakeLists {
    /// Every limit asked for, in order.
    asked: Mutex<Vec<i64>>,
    /// Answers as if the database were unreachable.
    down: bool,
}

impl FakeLists {
    /// The limits asked for so far.
    fn asked(&self) -> Vec<i64> {
        self.asked.lock().expect("not poisoned").clone()
    }

    /// Records `limit`; fails when down.
    fn ask(&self, limit: i64) -> Result<(), StoreError> {
        self.asked.lock().expect("not poisoned").push(limit);
        if self.down {
            return Err(StoreError::Unavailable(Arc::new(sqlx::Error::PoolTimedOut)));
        }
        Ok(())
    }
}

fn summary() -> OrderSummary {
    OrderSummary {
        order_uid: "known-1".to_owned(),
        track_number: "TRACK".to_owned(),
        customer_id: "c".to_owned(),
        delivery_name: "<b>Name</b>".to_owned(),
        delivery_city: "City".to_owned(),
        amount: 1817,
        currency: "USD".to_owned(),
        item_count: 1,
        date_created: "2021-11-26T06:22:19Z".to_owned(),
        stored_at: "2026-01-01T00:00:00.000Z".to_owned(),
    }
}

impl RecentLists for FakeLists {
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>> {
        let result = self.ask(limit).map(|()| vec![summary()]);
        Box::pin(async move { result })
    }

    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RejectedSummary>, StoreError>> {
        let result = self.ask(limit).map(|()| {
            vec![RejectedSummary {
                id: 7,
                topic: "orders".to_owned(),
                partition: 2,
                offset: 41,
                reason_code: "malformed_json".to_owned(),
                reason: "malformed JSON".to_owned(),
                seen_at: "2026-01-01T00:00:00.000Z".to_owned(),
                payload_bytes: Some(3),
                payload_preview: "{{{".to_owned(),
                truncated: false,
            }]
        });
        Box::pin(async move { result })
    }
}

/// A router over [`FakeLists`], with its events hub and shutdown token.
struct Fixture {
    /// The router.
    app: axum::Router,
    /// The fake lists behind it.
    lists: Arc<FakeLists>,
    /// Its event hub.
    events: OrderEvents,
    /// Its shutdown token.
    shutdown: CancellationToken,
}

fn fixture(down: bool, limits: Limits) -> Fixture {
    let lists = Arc::new(FakeLists {
        down,
        ..FakeLists::default()
    });
    let events = OrderEvents::new();
    let shutdown = CancellationToken::new();
    let state = AppState {
        lists: lists.clone(),
        events: events.clone(),
        shutdown: shutdown.clone(),
        ..AppState::for_tests(Arc::new(NoOrders))
    };
    Fixture {
        app: router_with(state, limits),
        lists,
        events,
        shutdown,
    }
}

/// An order store that knows no order, on a database that always answers.
struct NoOrders;

impl crate::store::DatabasePing for NoOrders {
    fn ping(&self, _timeout: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

impl crate::store::OrderLookup for NoOrders {
    fn find(&self, _uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        Box::pin(async { Ok(None) })
    }
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

#[tokio::test]
async fn lists_take_the_default_limit_and_answer_json_arrays() {
    let f = fixture(false, Limits::default());
    let (status, orders) = get(&f.app, "/api/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders[0]["order_uid"], "known-1");
    assert_eq!(orders[0]["delivery_name"], "<b>Name</b>");
    assert_eq!(orders[0]["amount"], 1817);
    let (status, rejected) = get(&f.app, "/api/rejected").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rejected[0]["reason_code"], "malformed_json");
    assert_eq!(rejected[0]["partition"], 2);
    assert_eq!(rejected[0]["offset"], 41);
    assert_eq!(rejected[0]["payload_preview"], "{{{");
    assert_eq!(f.lists.asked(), vec![DEFAULT_LIMIT, DEFAULT_LIMIT]);
}

#[tokio::test]
async fn lists_take_a_limit_within_bounds() {
    let f = fixture(false, Limits::default());
    for uri in ["/api/orders?limit=1", "/api/rejected?limit=100&other=x"] {
        assert_eq!(get(&f.app, uri).await.0, StatusCode::OK, "{uri}");
    }
    assert_eq!(f.lists.asked(), vec![1, 100]);
}

#[tokio::test]
async fn a_bad_limit_is_400_invalid_limit_without_a_query() {
    let f = fixture(false, Limits::default());
    for list in ["/api/orders", "/api/rejected"] {
        for limit in ["0", "101", "-1", "abc", "1.5", "", "99999999999999999999"] {
            let uri = format!("{list}?limit={limit}");
            let (status, body) = get(&f.app, &uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["error"], "invalid_limit", "{uri}");
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("1 to 100"))
            );
        }
    }
    assert!(f.lists.asked().is_empty(), "no query for a bad limit");
}

#[tokio::test]
async fn lists_are_503_when_the_database_is_down() {
    let f = fixture(true, Limits::default());
    for uri in ["/api/orders", "/api/rejected"] {
        let (status, body) = get(&f.app, uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["error"], "unavailable", "{uri}");
    }
}

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
    let f = fixture(false, limits);
    let request = Request::get("/api/orders/stream")
        .body(Body::empty())
        .expect("request");
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
    let (status, _) = get(&f.app, "/api/orders").await;
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
    let f = fixture(false, Limits::default());
    let _listeners: Vec<_> = (0..MAX_LISTENERS).map(|_| f.events.subscribe()).collect();
    let (status, body) = get(&f.app, "/api/orders/stream").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "overloaded");
}
