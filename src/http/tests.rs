//! The handlers' answers with a fake order store: 200 (hit and miss), 304, 400, 404, 503,
//! 500, one database read for many concurrent misses, the short memory of ids not found, the
//! limits every request is held to (timeout, load shedding, header size, control characters,
//! methods), and the headers every response carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::error::ApiError;
use super::middleware::guard::has_control_character;
use super::{AppState, Limits, router, router_with};
use crate::cache::OrderCache;
use crate::ingest::ConsumerStatus;
use crate::store::DatabasePing;
use crate::store::{OrderLookup, RecentOrders, StoreError};

/// How the fake store answers.
#[derive(Clone, Copy)]
enum Mode {
    /// From its map.
    Up,
    /// Database unreachable.
    Down,
    /// A query error with internal text in it.
    Broken,
    /// Never.
    Stalled,
    /// From its map, once the test opens the gate.
    Gated,
}

/// An [`OrderLookup`] with two orders, answering as its [`Mode`] says.
struct FakeStore {
    /// The orders it knows.
    orders: HashMap<String, Bytes>,
    /// How it answers.
    mode: Mode,
    /// How many lookups were started.
    lookups: AtomicUsize,
    /// Gets a permit each time a lookup starts (to wait for lookups in flight).
    entered: Arc<Semaphore>,
    /// In [`Mode::Gated`], each lookup waits for a permit of this, which starts with none.
    gate: Arc<Semaphore>,
}

impl OrderLookup for FakeStore {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.entered.add_permits(1);
        let found = self.orders.get(uid).cloned();
        match self.mode {
            Mode::Up => Box::pin(async move { Ok(found) }),
            Mode::Down => Box::pin(async {
                Err(StoreError::Unavailable(Arc::new(sqlx::Error::PoolTimedOut)))
            }),
            Mode::Broken => Box::pin(async {
                Err(StoreError::Query(Arc::new(sqlx::Error::Protocol(
                    "secret internal detail".into(),
                ))))
            }),
            Mode::Stalled => Box::pin(std::future::pending()),
            Mode::Gated => {
                let gate = self.gate.clone();
                Box::pin(async move {
                    let _permit = gate.acquire_owned().await.expect("the gate stays open");
                    Ok(found)
                })
            }
        }
    }
}

impl DatabasePing for FakeStore {
    fn ping(&self, _timeout: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.mode {
            Mode::Down => Box::pin(async {
                Err(StoreError::Unavailable(Arc::new(sqlx::Error::PoolTimedOut)))
            }),
            _ => Box::pin(async { Ok(()) }),
        }
    }
}

const ORDER: &[u8] = br#"{"order_uid":"known-1"}"#;

fn app(mode: Mode) -> (axum::Router, Arc<FakeStore>, OrderCache) {
    app_with(mode, None)
}

/// The router over a fake store in `mode`, with `limits` if given (else [`router`]'s).
fn app_with(mode: Mode, limits: Option<Limits>) -> (axum::Router, Arc<FakeStore>, OrderCache) {
    app_over(
        mode,
        limits,
        OrderCache::new(Duration::from_secs(60), 1 << 20),
    )
}

/// The router over a fake store in `mode` and `cache`, with `limits` if given.
fn app_over(
    mode: Mode,
    limits: Option<Limits>,
    cache: OrderCache,
) -> (axum::Router, Arc<FakeStore>, OrderCache) {
    let store = Arc::new(FakeStore {
        orders: HashMap::from([
            ("known-1".to_owned(), Bytes::from_static(ORDER)),
            ("known-2".to_owned(), Bytes::from_static(ORDER)),
        ]),
        mode,
        lookups: AtomicUsize::new(0),
        entered: Arc::new(Semaphore::new(0)),
        gate: Arc::new(Semaphore::new(0)),
    });
    let state = AppState {
        cache: cache.clone(),
        ..AppState::for_tests(store.clone())
    };
    let router = match limits {
        Some(limits) => router_with(state, limits),
        None => router(state),
    };
    (router, store, cache)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (Response<Body>, Bytes) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (Response::from_parts(parts, Body::empty()), bytes)
}

async fn get(app: &axum::Router, uri: &str) -> (Response<Body>, Bytes) {
    send(app, request(Method::GET, uri)).await
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON error body");
    value["error"].as_str().expect("an error code").to_owned()
}

/// Asserts that `response` carries every security header.
#[track_caller]
fn assert_security_headers(response: &Response<Body>, what: &str) {
    assert!(
        header(response, "content-security-policy").is_some_and(|v| v
            .contains("default-src 'self'")
            && v.contains("frame-ancestors 'none'")),
        "{what}: content-security-policy"
    );
    assert_eq!(
        header(response, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(response, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(header(response, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(response, "cross-origin-resource-policy"),
        Some("same-origin"),
        "{what}"
    );
}

/// Asserts an error answer: its status, its JSON code and the security headers.
#[track_caller]
fn assert_error(
    response: &Response<Body>,
    body: &[u8],
    status: StatusCode,
    code: &str,
    what: &str,
) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        header(response, "content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(error_code(body), code, "{what}");
    assert_security_headers(response, what);
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
    let (up, _, _) = app(Mode::Up);
    let (response, body) = get(&up, "/api/order/unknown-2").await;
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

    cache.insert("known-1", ORDER).await;
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

#[tokio::test]
async fn error_answers_carry_the_security_headers() {
    let (down, _, _) = app(Mode::Down);
    for (uri, status, code) in [
        (
            "/api/order/not%20valid",
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "/api/order/known-1",
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
        ("/nowhere", StatusCode::NOT_FOUND, "no_route"),
    ] {
        let (response, body) = get(&down, uri).await;
        assert_error(&response, &body, status, code, uri);
    }
    let (up, _, _) = app(Mode::Up);
    let (response, body) = get(&up, "/api/order/unknown-2").await;
    assert_error(
        &response,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown id",
    );
    let (response, _) = get(&up, "/health/live").await;
    assert_security_headers(&response, "/health/live");
}

#[tokio::test]
async fn no_path_leads_outside_the_routes() {
    let (app, store, _) = app(Mode::Up);
    for uri in [
        "/../../etc/passwd",
        "/assets/../../etc/passwd",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/assets/..%2f..%2fCargo.toml",
        "/assets/%252e%252e%252fCargo.toml",
        "/assets/..%5c..%5cCargo.toml",
        "/assets/app.js/../../Cargo.toml",
        "//etc/passwd",
        "/static/index.html",
        "/Cargo.toml",
        "/.env",
        "/api/order/",
        "/api/order/known-1/extra",
        "/api/order/../../../etc/passwd",
    ] {
        let (response, body) = get(&app, uri).await;
        assert_error(&response, &body, StatusCode::NOT_FOUND, "no_route", uri);
    }
    for uri in [
        "/api/order/..%2F..%2Fetc%2Fpasswd",
        "/api/order/%2e%2e%2f",
        "/api/order/%252e%252e%252f",
        "/api/order/..%5C..%5Cetc",
        "/api/order/%C0%AE%C0%AE%2F",
    ] {
        let (response, body) = get(&app, uri).await;
        assert_error(&response, &body, StatusCode::BAD_REQUEST, "invalid_id", uri);
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_id_of_65_characters_or_more_is_refused_before_any_lookup() {
    let (app, store, _) = app(Mode::Up);
    let longest = "a".repeat(64);
    let (response, body) = get(&app, &format!("/api/order/{longest}")).await;
    assert_error(
        &response,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "64 chars",
    );
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        1,
        "64 chars are looked up"
    );
    // 60 000: the longest request URI is 65 534 bytes (the `http` crate's limit).
    for length in [65, 1000, 60_000] {
        let uri = format!("/api/order/{}", "a".repeat(length));
        let (response, body) = get(&app, &uri).await;
        assert_error(
            &response,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_id",
            &format!("{length}"),
        );
    }
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        1,
        "no lookup for a long id"
    );
}

#[tokio::test]
async fn only_get_and_head_are_allowed() {
    let (app, store, _) = app(Mode::Up);
    let methods = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"];
    for uri in ["/api/order/known-1", "/", "/assets/app.js", "/health/live"] {
        for method in methods {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            let what = format!("{method} {uri}");
            let (response, body) = send(&app, request(method, uri)).await;
            assert_error(
                &response,
                &body,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &what,
            );
            let mut allowed: Vec<_> = header(&response, "allow")
                .expect("an Allow header")
                .split(',')
                .map(str::trim)
                .collect();
            allowed.sort_unstable();
            assert_eq!(allowed, ["GET", "HEAD"], "{what}");
        }
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 0);
    // An unknown path is 404 whatever the method.
    let (response, body) = send(&app, request(Method::DELETE, "/nowhere")).await;
    assert_error(
        &response,
        &body,
        StatusCode::NOT_FOUND,
        "no_route",
        "DELETE /nowhere",
    );
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let (app, _, _) = app(Mode::Up);
    let (response, body) = send(&app, request(Method::HEAD, "/api/order/known-1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body.is_empty(), "HEAD has no body");
    assert_eq!(
        header(&response, "content-length"),
        Some(&*ORDER.len().to_string())
    );
    assert_eq!(header(&response, "x-cache"), Some("miss"));
    assert_security_headers(&response, "HEAD order");

    let (response, body) = send(&app, request(Method::HEAD, "/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body.is_empty());
    assert!(header(&response, "content-type").is_some_and(|t| t.starts_with("text/html")));

    let (response, body) = send(&app, request(Method::HEAD, "/api/order/unknown-2")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(body.is_empty());
    assert_security_headers(&response, "HEAD unknown");
}

#[tokio::test]
async fn oversized_headers_are_431_before_any_lookup() {
    let limits = Limits {
        max_header_bytes: 1000,
        ..Limits::default()
    };
    let (small, store, _) = app_with(Mode::Up, Some(limits));
    let with_headers = |headers: &[(&'static str, String)]| {
        let mut request = request(Method::GET, "/api/order/known-1");
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, value.parse().expect("a header value"));
        }
        request
    };
    // "x-pad" and its value make exactly the limit: accepted.
    let exactly = with_headers(&[("x-pad", "v".repeat(995))]);
    let (response, _) = send(&small, exactly).await;
    assert_eq!(response.status(), StatusCode::OK, "at the limit");

    let one_more = with_headers(&[("x-pad", "v".repeat(996))]);
    let (response, body) = send(&small, one_more).await;
    assert_error(
        &response,
        &body,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "one byte over",
    );
    // Many small headers count together, repeated names included.
    let many: Vec<_> = (0..20).map(|_| ("x-pad", "v".repeat(50))).collect();
    let (response, body) = send(&small, with_headers(&many)).await;
    assert_error(
        &response,
        &body,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "many headers",
    );
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        1,
        "only the accepted one"
    );

    // The default limit refuses a 64 KiB header.
    let (default, _, _) = app(Mode::Up);
    let (response, body) = send(&default, with_headers(&[("x-pad", "v".repeat(64 * 1024))])).await;
    assert_error(
        &response,
        &body,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "64 KiB",
    );
}

#[tokio::test]
async fn control_characters_in_the_target_are_400() {
    let (app, store, _) = app(Mode::Up);
    for uri in [
        "/api/order/%00",
        "/api/order/known-1%00",
        "/api/order/a%0Ab",
        "/api/order/%1b%5b31m",
        "/api/order/%7F",
        "/api/order/known-1?x=%0d%0aSet-Cookie:%20a=b",
        "/?q=%00",
        "/nowhere%09",
        "/health/live?%1F",
    ] {
        let (response, body) = get(&app, uri).await;
        assert_error(
            &response,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_target",
            uri,
        );
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 0);

    // Encoded twice, a control character is only text; other escapes pass.
    let (response, body) = get(&app, "/api/order/%2500").await;
    assert_error(
        &response,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_id",
        "%2500",
    );
    let (response, _) = get(&app, "/?q=%20%7E%80").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn control_characters_are_found_raw_and_percent_encoded() {
    for target in [
        &b"/\x00"[..],
        b"/a\nb",
        b"/\x7f",
        b"/%00",
        b"/%1f",
        b"/%1F",
        b"/%7f",
        b"/x%0A",
    ] {
        assert!(has_control_character(target), "{target:?}");
    }
    for target in [
        &b"/"[..],
        b"/%20",
        b"/%2500",
        b"/%",
        b"/%0",
        b"/%g0",
        b"/%80",
        b"/%7e",
        b"/\xc3\xa9",
    ] {
        assert!(!has_control_character(target), "{target:?}");
    }
}

#[tokio::test]
async fn a_slow_request_times_out_with_503_and_frees_its_slot() {
    // The lookup never finishes, so the timeout is the only way the request can end: the
    // outcome does not depend on timing, and a 1 ms timeout keeps the test instant.
    let limits = Limits {
        request_timeout: Duration::from_millis(1),
        max_in_flight: 1,
        ..Limits::default()
    };
    let (app, store, _) = app_with(Mode::Stalled, Some(limits));
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_error(
        &response,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "stalled lookup",
    );
    assert_eq!(header(&response, "retry-after"), Some("5"));
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);

    // The one slot was given back: the next request is served, not shed.
    let (response, _) = get(&app, "/health/live").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn requests_over_the_bound_are_shed_with_503() {
    let limits = Limits {
        max_in_flight: 2,
        ..Limits::default()
    };
    let (app, store, _) = app_with(Mode::Gated, Some(limits));
    // Two ids: requests for one id would share one lookup.
    let in_flight: Vec<_> = ["/api/order/known-1", "/api/order/known-2"]
        .into_iter()
        .map(|uri| {
            let app = app.clone();
            tokio::spawn(async move { get(&app, uri).await.0.status() })
        })
        .collect();
    // Both lookups have started and wait at the gate: the bound is reached.
    store
        .entered
        .acquire_many(2)
        .await
        .expect("lookups start")
        .forget();

    for uri in ["/api/order/known-1", "/health/live", "/", "/nowhere"] {
        let (response, body) = get(&app, uri).await;
        assert_error(
            &response,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            uri,
        );
        assert_eq!(header(&response, "retry-after"), Some("1"), "{uri}");
    }
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        2,
        "shed requests made no lookup"
    );

    store.gate.add_permits(2);
    for request in in_flight {
        assert_eq!(request.await.expect("no panic"), StatusCode::OK);
    }
    let (response, _) = get(&app, "/api/order/known-1").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "served again once the load is gone"
    );
}

#[tokio::test]
async fn an_unexpected_middleware_error_is_a_500_without_its_text() {
    let error = ApiError::from_middleware("secret middleware detail".into());
    assert!(matches!(error, ApiError::Internal));
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(error_code(&body), "internal");
    assert!(!String::from_utf8_lossy(&body).contains("secret"));
    assert!(matches!(
        ApiError::from_middleware(ApiError::HeadersTooLarge.into()),
        ApiError::HeadersTooLarge
    ));
}

/// A service whose `poll_ready` fails, to reach the only path of [`AnswerErrors`] the
/// router's stack cannot.
#[derive(Clone)]
struct NeverReady;

impl tower::Service<Request<Body>> for NeverReady {
    type Response = axum::response::Response;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Err("secret readiness detail".into()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        std::future::ready(Ok(StatusCode::OK.into_response()))
    }
}

#[tokio::test]
async fn a_service_that_is_not_ready_is_answered_not_called() {
    let service = super::middleware::error_answer::AnswerErrors::new(NeverReady);
    let response = service
        .oneshot(request(Method::GET, "/"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(error_code(&body), "internal");
}

/// The readiness of `mode`'s store with a consumer that runs with `partitions` assigned.
async fn readiness(
    mode: Mode,
    running: bool,
    partitions: usize,
) -> (StatusCode, serde_json::Value) {
    let store = Arc::new(FakeStore {
        orders: HashMap::new(),
        mode,
        lookups: AtomicUsize::new(0),
        entered: Arc::new(Semaphore::new(0)),
        gate: Arc::new(Semaphore::new(0)),
    });
    let consumer = Arc::new(ConsumerStatus::default());
    consumer.set_running(running);
    consumer.set_assignment(
        (0..partitions)
            .map(|p| ("orders".to_owned(), p as i32))
            .collect(),
    );
    let mut state = AppState::for_tests(store);
    state.readiness.consumer = consumer;
    let (response, body) = get(&router(state), "/health/ready").await;
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
    let store = Arc::new(FakeStore {
        orders: HashMap::new(),
        mode: Mode::Up,
        lookups: AtomicUsize::new(0),
        entered: Arc::new(Semaphore::new(0)),
        gate: Arc::new(Semaphore::new(0)),
    });
    let consumer = Arc::new(ConsumerStatus::default());
    consumer.set_running(true);
    let mut state = AppState::for_tests(store);
    state.readiness.consumer = consumer.clone();
    let app = router(state);

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
async fn a_request_id_is_echoed_or_generated() {
    let (app, _, _) = app(Mode::Up);
    let request = Request::get("/health/live")
        .header("x-request-id", "my-id-42")
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.headers()["x-request-id"], "my-id-42");
    let (response, _) = get(&app, "/nowhere").await;
    let generated = response.headers()["x-request-id"].to_str().expect("ASCII");
    assert_eq!(generated.len(), 32, "{generated}");
}

/// A writer that keeps what the logger writes, for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_logged_on_the_access_target_with_its_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let (app, _, _) = app(Mode::Up);
    let request = Request::get("/no/such/page")
        .header("x-request-id", "log-me-7")
        .body(Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let log = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8");
    let line = log
        .lines()
        .find(|line| line.contains(" access: "))
        .unwrap_or_else(|| panic!("no access log line in {log:?}"));
    for part in [
        "INFO",
        "request_id=\"log-me-7\"",
        "route=\"unmatched\"",
        "path=/no/such/page",
        "method=GET",
        "status=404",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

/// Sends `GET uri` with `If-None-Match: value`.
async fn get_if_none_match(app: &axum::Router, uri: &str, value: &str) -> (Response<Body>, Bytes) {
    let mut request = request(Method::GET, uri);
    request
        .headers_mut()
        .insert("if-none-match", value.parse().expect("a header value"));
    send(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_misses_make_one_database_read() {
    let (app, store, _) = app(Mode::Gated);
    let requests: Vec<_> = (0..32)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { get(&app, "/api/order/known-1").await })
        })
        .collect();
    // One lookup has started and waits at the gate; give the others time to queue behind it.
    store
        .entered
        .acquire()
        .await
        .expect("a lookup starts")
        .forget();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1, "the others wait");
    // Enough permits for every request, so that a second read would show, not hang.
    store.gate.add_permits(64);
    for request in requests {
        let (response, body) = request.await.expect("no panic");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body.as_ref(), ORDER);
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1, "one database read");

    // The same for an id that does not exist: one read, every request 404.
    let requests: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { get(&app, "/api/order/unknown-2").await })
        })
        .collect();
    store
        .entered
        .acquire()
        .await
        .expect("a lookup starts")
        .forget();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.gate.add_permits(64);
    for request in requests {
        let (response, body) = request.await.expect("no panic");
        assert_error(
            &response,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown",
        );
    }
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2, "one more read");
}

#[tokio::test]
async fn an_id_not_found_is_remembered_briefly_and_an_arriving_order_is_visible_at_once() {
    let (app, store, cache) = app(Mode::Up);
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        1,
        "the second 404 comes from memory"
    );

    // Past the negative TTL, the database is asked again.
    tokio::time::sleep(crate::cache::NEGATIVE_TTL + Duration::from_millis(500)).await;
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2, "asked again");

    // Ingest stores the order and caches it: served at once, though just remembered absent.
    cache.insert("unknown-2", ORDER).await;
    let (response, body) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-cache"), Some("hit"));
    assert_eq!(body.as_ref(), ORDER);
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_order_has_a_strong_etag_and_if_none_match_is_304() {
    let (app, store, _) = app(Mode::Up);
    let (miss, _) = get(&app, "/api/order/known-1").await;
    let etag = header(&miss, "etag").expect("an ETag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert_eq!(
        header(&miss, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let (hit, _) = get(&app, "/api/order/known-1").await;
    assert_eq!(header(&hit, "x-cache"), Some("hit"));
    assert_eq!(
        header(&hit, "etag"),
        Some(&*etag),
        "the same tag from memory"
    );

    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    for value in [etag.as_str(), &weak, &listed, "*"] {
        let (response, body) = get_if_none_match(&app, "/api/order/known-1", value).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{value}");
        assert!(body.is_empty(), "{value}");
        assert_eq!(header(&response, "etag"), Some(&*etag), "{value}");
        assert_eq!(
            header(&response, "cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{value}"
        );
        assert_eq!(header(&response, "x-cache"), Some("hit"), "{value}");
        assert_eq!(header(&response, "content-type"), None, "{value}");
        assert_security_headers(&response, value);
    }
    let (response, body) = get_if_none_match(&app, "/api/order/known-1", "\"other\"").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body.as_ref(), ORDER);

    let mut head = request(Method::HEAD, "/api/order/known-1");
    head.headers_mut()
        .insert("if-none-match", etag.parse().expect("a header value"));
    let (response, _) = send(&app, head).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "HEAD");

    // `*` matches only an order that exists; errors are not cacheable.
    let (response, body) = get_if_none_match(&app, "/api/order/unknown-2", "*").await;
    assert_error(
        &response,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "unknown",
    );
    assert_eq!(header(&response, "etag"), None);
    assert_eq!(header(&response, "cache-control"), None);
    assert_eq!(store.lookups.load(Ordering::SeqCst), 2, "known-1 read once");

    let (down, _, _) = app_over(
        Mode::Down,
        None,
        OrderCache::new(Duration::from_secs(60), 1 << 20),
    );
    let (response, _) = get(&down, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "etag"), None);
    assert_eq!(header(&response, "cache-control"), None);
}

#[tokio::test]
async fn with_the_cache_off_every_read_is_a_miss_with_the_same_bytes_and_tag() {
    let (on, _, _) = app(Mode::Up);
    let (response, _) = get(&on, "/api/order/known-1").await;
    let etag = header(&response, "etag").expect("an ETag").to_owned();

    let (off, store, _) = app_over(Mode::Up, None, OrderCache::new(Duration::from_secs(60), 0));
    for _ in 0..3 {
        let (response, body) = get(&off, "/api/order/known-1").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "x-cache"), Some("miss"));
        assert_eq!(header(&response, "etag"), Some(&*etag));
        assert_eq!(body.as_ref(), ORDER);
    }
    for _ in 0..2 {
        let (response, _) = get(&off, "/api/order/unknown-2").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        5,
        "nothing remembered"
    );
}

impl RecentOrders for FakeStore {
    fn recent_orders(
        &self,
        _limit: i64,
        _max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>> {
        // The warm-up waits at the gate; lookups in `Mode::Up` do not.
        let gate = self.gate.clone();
        Box::pin(async move {
            let _permit = gate.acquire_owned().await.expect("the gate stays open");
            Ok(vec![("warm-3".to_owned(), Bytes::from_static(ORDER))])
        })
    }
}

#[tokio::test]
async fn orders_are_served_while_the_warm_up_is_still_running() {
    let (app, store, cache) = app(Mode::Up);
    let warm_up = cache.spawn_warm(store.clone(), 10_000);
    let finished = warm_up.finished();
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::OK, "served during warm-up");
    assert_eq!(header(&response, "x-cache"), Some("miss"));
    assert_eq!(body.as_ref(), ORDER);
    assert!(!finished.is_finished(), "the warm-up waits at its gate");

    store.gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(10), finished.wait())
        .await
        .expect("the warm-up finishes");
    let (response, _) = get(&app, "/api/order/warm-3").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-cache"),
        Some("hit"),
        "loaded by the warm-up"
    );
    assert_eq!(store.lookups.load(Ordering::SeqCst), 1);
}
