//! The limit on failed lookups per client: 404s up to the burst, then 429 `too_many_lookups`
//! with `Retry-After` for that client's every lookup, found or not, while others are
//! unaffected; loopback exempt unless told otherwise; 0 turns it off.

use std::net::SocketAddr;

use crate::http::front::Front;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Response, StatusCode};
use bytes::Bytes;

use super::support::*;
use crate::http::lookup_limit::LookupLimitSettings;

/// A client outside the host.
const OUTSIDE: &str = "203.0.113.9:50000";

/// Another one.
const OTHER: &str = "198.51.100.4:50000";

/// The host itself.
const LOOPBACK: &str = "127.0.0.1:50000";

/// Sends `GET uri` as the connection from `peer` would.
async fn get_from(app: &Front, peer: &str, uri: &str) -> (Response<Body>, Bytes) {
    let mut request = request(Method::GET, uri);
    let addr: SocketAddr = peer.parse().expect("a socket address");
    request.extensions_mut().insert(ConnectInfo(addr));
    send(app, request).await
}

/// A router whose limit allows `burst` failures in a row, then one a minute.
fn limited(burst: u32, exempt_loopback: bool) -> Front {
    TestApp::builder(Mode::Up)
        .lookup_limit(LookupLimitSettings {
            failures_per_minute: 1,
            burst,
            exempt_loopback,
        })
        .build()
        .app
}

/// Asserts a 429 `too_many_lookups` with the JSON error body and a `Retry-After` of whole
/// seconds within the minute the budget takes to refill one failure.
#[track_caller]
fn assert_limited(response: &Response<Body>, body: &[u8], what: &str) {
    assert_error(
        response,
        body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_lookups",
        what,
    );
    let retry_after: u64 = header(response, "retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: a Retry-After in seconds"));
    assert!((1..=60).contains(&retry_after), "{what}: {retry_after}");
}

/// Spends `n` failures of `peer`, asserting each is a 404.
async fn fail(app: &Front, peer: &str, n: u32) {
    for i in 0..n {
        let (response, body) = get_from(app, peer, &format!("/api/order/missing-{i}")).await;
        assert_error(
            &response,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("failure {i} of {peer}"),
        );
    }
}

#[tokio::test]
async fn failures_past_the_burst_are_429_for_hits_and_misses_alike() {
    let app = limited(3, true);
    // Hits cost nothing: many before, between and after the failures.
    for _ in 0..10 {
        let (response, _) = get_from(&app, OUTSIDE, "/api/order/known-1").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    fail(&app, OUTSIDE, 3).await;
    let (response, _) = get_from(&app, OUTSIDE, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::OK, "a hit spends nothing");

    let (response, body) = get_from(&app, OUTSIDE, "/api/order/missing-4").await;
    assert_limited(&response, &body, "the failure past the burst");
    let (response, body) = get_from(&app, OUTSIDE, "/api/order/known-1").await;
    assert_limited(&response, &body, "a hit while blocked");
    let (response, body) = get_from(&app, OUTSIDE, "/api/order/known-2").await;
    assert_limited(&response, &body, "another hit while blocked");

    // Another client has its own budget.
    fail(&app, OTHER, 3).await;
    let (response, _) = get_from(&app, OTHER, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::OK, "the other client");

    // A bad id is no lookup: still refused as such, and spends nothing.
    let (response, body) = get_from(&app, OTHER, "/api/order/bad%20id").await;
    assert_error(
        &response,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_id",
        "bad id",
    );
    let (response, body) = get_from(&app, OTHER, "/api/order/missing-x").await;
    assert_limited(&response, &body, "the other client past its burst");
}

#[tokio::test]
async fn an_ipv6_client_is_its_64() {
    let app = limited(2, true);
    fail(&app, "[2001:db8:7:7::1]:50000", 2).await;
    let (response, body) = get_from(&app, "[2001:db8:7:7::2]:50000", "/api/order/x").await;
    assert_limited(&response, &body, "another address of the same /64");
    let (response, _) = get_from(&app, "[2001:db8:7:8::1]:50000", "/api/order/x").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "another /64");
}

#[tokio::test]
async fn loopback_is_exempt_unless_told_otherwise() {
    let exempt = limited(2, true);
    fail(&exempt, LOOPBACK, 50).await;
    fail(&exempt, "[::1]:50000", 50).await;

    let strict = limited(2, false);
    fail(&strict, LOOPBACK, 2).await;
    let (response, body) = get_from(&strict, LOOPBACK, "/api/order/missing-x").await;
    assert_limited(&response, &body, "loopback, not exempt");

    // The defaults: loopback exempt, others limited after 20 failures.
    let default = test_app(Mode::Up).app;
    fail(&default, LOOPBACK, 40).await;
    fail(&default, OUTSIDE, 20).await;
    let (response, body) = get_from(&default, OUTSIDE, "/api/order/missing-x").await;
    assert_limited(&response, &body, "the default burst");
}

#[tokio::test]
async fn zero_per_minute_turns_the_limit_off() {
    let app = TestApp::builder(Mode::Up)
        .lookup_limit(LookupLimitSettings {
            failures_per_minute: 0,
            burst: 1,
            exempt_loopback: false,
        })
        .build()
        .app;
    fail(&app, OUTSIDE, 50).await;
    fail(&app, LOOPBACK, 50).await;
}

#[tokio::test]
async fn a_request_without_a_peer_address_is_not_limited() {
    // A router served without connection info (as the other tests here) knows no client.
    let app = limited(1, false);
    for i in 0..5 {
        let (response, _) = get(&app, &format!("/api/order/missing-{i}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
