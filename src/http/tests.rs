//! The handlers' answers with a fake order store: 200 (hit and miss), 400, 404, 503, 500,
//! and the headers every response carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use futures::future::BoxFuture;
use tower::ServiceExt;

use super::{AppState, router};
use crate::cache::OrderCache;
use crate::store::{OrderLookup, StoreError};

/// How the fake store answers.
#[derive(Clone, Copy)]
enum Mode {
    Up,
    Down,
    Broken,
}

struct FakeStore {
    orders: HashMap<String, Bytes>,
    mode: Mode,
    lookups: AtomicUsize,
}

impl OrderLookup for FakeStore {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = match self.mode {
            Mode::Up => Ok(self.orders.get(uid).cloned()),
            Mode::Down => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            Mode::Broken => Err(StoreError::Query(sqlx::Error::Protocol(
                "secret internal detail".into(),
            ))),
        };
        Box::pin(async move { answer })
    }
}

const ORDER: &[u8] = br#"{"order_uid":"known-1"}"#;

fn app(mode: Mode) -> (axum::Router, Arc<FakeStore>, OrderCache) {
    let store = Arc::new(FakeStore {
        orders: HashMap::from([("known-1".to_owned(), Bytes::from_static(ORDER))]),
        mode,
        lookups: AtomicUsize::new(0),
    });
    let cache = OrderCache::new(Duration::from_secs(60), 1 << 20);
    let state = AppState {
        cache: cache.clone(),
        orders: store.clone(),
    };
    (router(state), store, cache)
}

async fn get(app: &axum::Router, uri: &str) -> (Response<Body>, Bytes) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (Response::from_parts(parts, Body::empty()), bytes)
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON error body");
    value["error"].as_str().expect("an error code").to_owned()
}

#[tokio::test]
async fn a_miss_reads_the_store_then_a_hit_does_not() {
    let (app, store, _) = app(Mode::Up);
    let (first, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-cache"), Some("miss"));
    assert_eq!(header(&first, "content-type"), Some("application/json"));
    assert_eq!(body.as_ref(), ORDER);

    let (second, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(header(&second, "x-cache"), Some("hit"));
    assert_eq!(body.as_ref(), ORDER, "same bytes from cache and store");
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_bad_id_is_refused_before_any_lookup() {
    let (app, store, _) = app(Mode::Up);
    for uri in [
        "/api/order/has%20space",
        "/api/order/semi;colon",
        "/api/order/..%2Fetc%2Fpasswd",
        "/api/order/%27%20OR%201%3D1--",
        "/api/order/%FF%FE",
        &format!("/api/order/{}", "a".repeat(65)),
    ] {
        let (response, body) = get(&app, uri).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(error_code(&body), "invalid_id", "{uri}");
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_id_is_404() {
    let (app, _, _) = app(Mode::Up);
    let (response, body) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

#[tokio::test]
async fn a_down_database_is_503_unless_cached() {
    let (app, _, cache) = app(Mode::Down);
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "unavailable");
    assert!(header(&response, "retry-after").is_some());

    cache.insert("known-1", Bytes::from_static(ORDER)).await;
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "cache hits survive the outage"
    );
    assert_eq!(body.as_ref(), ORDER);
}

#[tokio::test]
async fn internal_errors_do_not_leak() {
    let (app, _, _) = app(Mode::Broken);
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "internal");
    assert!(!String::from_utf8_lossy(&body).contains("secret"));
}

#[tokio::test]
async fn the_page_and_security_headers() {
    let (app, _, _) = app(Mode::Up);
    let (page, body) = get(&app, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")));
    assert!(String::from_utf8_lossy(&body).contains("/assets/app.js"));
    assert!(
        header(&page, "content-security-policy").is_some_and(|v| v.contains("script-src 'self'"))
    );
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));

    for asset in ["/assets/app.js", "/assets/style.css"] {
        let (response, body) = get(&app, asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }
    let (missing, body) = get(&app, "/assets/../Cargo.toml").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "no_route");
}
