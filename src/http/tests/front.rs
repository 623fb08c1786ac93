//! The short way of the order route ([`crate::http::front`]): it answers a hit, and a miss
//! whatever its lookup gives (found, not found, a budget spent, a database down, broken or
//! too slow), exactly as the router does (status, headers in order, body); and it leaves
//! every other request to the router: other methods, queries, bad ids, oversized headers, a
//! token required, a blocked client, a full concurrency bound.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;
use tower::ServiceExt;

use super::support::*;
use crate::cache::OrderCache;
use crate::http::Limits;
use crate::http::front::Front;
use crate::http::lookup_limit::LookupLimitSettings;

/// A hit's id: [`ORDER`] once read.
const HIT: &str = "/api/order/known-1";

/// The service with `known-1` cached.
async fn warmed(builder: TestAppBuilder) -> Front {
    let app = builder.build().app;
    let (response, _) = get(&app, HIT).await;
    assert_eq!(
        header(&response, "x-cache"),
        Some("miss"),
        "the first read fills the cache"
    );
    app
}

/// A `GET` of `uri` with these headers.
fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = anonymous(Method::GET, uri);
    for (name, value) in headers {
        request.headers_mut().append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    request
}

/// A response's status, headers in order (a generated request id as `<generated>`) and body.
async fn parts(response: Response<Body>) -> (StatusCode, Vec<(String, String)>, Bytes) {
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().expect("ASCII").to_owned();
            let generated = name == "x-request-id"
                && value.len() == 32
                && value.bytes().all(|b| b.is_ascii_hexdigit());
            let value = if generated {
                "<generated>".to_owned()
            } else {
                value
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, headers, body)
}

#[tokio::test]
async fn a_hit_is_answered_as_the_router_answers_it() {
    let app = warmed(TestApp::builder(Mode::Up)).await;
    let (long_way, _) = get(&app, HIT).await;
    let etag = header(&long_way, "etag").expect("an ETag").to_owned();
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("if-none-match", &etag)],
        &[("if-none-match", "\"other\"")],
        &[("x-request-id", "client-id-1")],
        &[("x-request-id", "unfit id"), ("accept", "application/json")],
    ];
    for headers in cases {
        let short = app
            .short_answer(get_with(HIT, headers))
            .await
            .unwrap_or_else(|| panic!("{headers:?}: a hit takes the short way"));
        let long = app
            .router()
            .oneshot(get_with(HIT, headers))
            .await
            .expect("infallible");
        let (short, long) = (parts(short).await, parts(long).await);
        assert_eq!(short, long, "{headers:?}");
        assert!(
            short
                .1
                .iter()
                .any(|(name, value)| name == "x-cache" && value == "hit"),
            "{headers:?}: {:?}",
            short.1
        );
    }
}

/// Two services alike, with the cache off (every lookup a miss) and a short request timeout:
/// one to be asked the short way, one through its router alone.
fn twins(mode: Mode) -> (Front, Front) {
    let twin = || {
        TestApp::builder(mode)
            .cache(OrderCache::new(std::time::Duration::from_secs(60), 0))
            .limits(Limits {
                request_timeout: std::time::Duration::from_millis(50),
                ..Limits::default()
            })
            .lookup_limit(LookupLimitSettings {
                failures_per_minute: 1,
                burst: 1,
                exempt_loopback: false,
            })
            .build()
            .app
    };
    (twin(), twin())
}

/// A request asked in a sequence: its target, its headers and the status it must get.
type Asked<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode);

#[tokio::test]
async fn a_miss_is_answered_as_the_router_answers_it_whatever_the_lookup_gives() {
    let (app, _) = twins(Mode::Up);
    let (found, _) = send(&app, get_with(HIT, &[])).await;
    let etag = header(&found, "etag").expect("an ETag").to_owned();
    let peer: SocketAddr = "203.0.113.9:50000".parse().expect("an address");
    // Each sequence goes to two services alike, in order: the budget of failed lookups is
    // spent by the first unknown id, so the second is 429.
    let sequences: [(Mode, &[Asked]); 4] = [
        (
            Mode::Up,
            &[
                (HIT, &[], StatusCode::OK),
                (HIT, &[("if-none-match", &etag)], StatusCode::NOT_MODIFIED),
                (HIT, &[("x-request-id", "client-id-1")], StatusCode::OK),
                ("/api/order/unknown-1", &[], StatusCode::NOT_FOUND),
                ("/api/order/unknown-2", &[], StatusCode::TOO_MANY_REQUESTS),
            ],
        ),
        (Mode::Down, &[(HIT, &[], StatusCode::SERVICE_UNAVAILABLE)]),
        (
            Mode::Broken,
            &[(HIT, &[], StatusCode::INTERNAL_SERVER_ERROR)],
        ),
        (
            Mode::Stalled,
            &[(HIT, &[], StatusCode::SERVICE_UNAVAILABLE)],
        ),
    ];
    for (mode, sequence) in sequences {
        let (short_app, long_app) = twins(mode);
        for (uri, headers, status) in sequence {
            let request = || {
                let mut request = get_with(uri, headers);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            };
            let short = short_app
                .short_answer(request())
                .await
                .unwrap_or_else(|| panic!("{uri} {headers:?}: a miss takes the short way"));
            let long = long_app
                .router()
                .oneshot(request())
                .await
                .expect("infallible");
            let (short, long) = (parts(short).await, parts(long).await);
            assert_eq!(short.0, *status, "{uri} {headers:?}");
            assert_eq!(short, long, "{uri} {headers:?}");
        }
    }
}

#[tokio::test]
async fn a_hit_is_counted_and_logged_like_any_request() {
    let app = warmed(TestApp::builder(Mode::Up)).await;
    let response = app.short_answer(get_with(HIT, &[])).await.expect("a hit");
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response, "a short answer");
}

#[tokio::test]
async fn everything_but_a_plain_lookup_goes_to_the_router() {
    let app = warmed(TestApp::builder(Mode::Up)).await;
    let oversized = "x".repeat(crate::http::MAX_HEADER_BYTES + 1);
    let mut head = get_with(HIT, &[]);
    *head.method_mut() = Method::HEAD;
    let mut post = get_with(HIT, &[]);
    *post.method_mut() = Method::POST;
    let cases = [
        ("HEAD", head, StatusCode::OK),
        ("POST", post, StatusCode::METHOD_NOT_ALLOWED),
        (
            "a query",
            get_with(&format!("{HIT}?a=1"), &[]),
            StatusCode::OK,
        ),
        (
            "a bad id",
            get_with("/api/order/has%20space", &[]),
            StatusCode::BAD_REQUEST,
        ),
        (
            "another path",
            get_with("/api/order/known-1/x", &[]),
            StatusCode::NOT_FOUND,
        ),
        (
            "oversized headers",
            get_with(HIT, &[("x-big", &oversized)]),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
    ];
    for (what, request, status) in cases {
        let copy = Request::builder()
            .method(request.method())
            .uri(request.uri())
            .body(Body::empty())
            .expect("a request");
        let mut copy = copy;
        *copy.headers_mut() = request.headers().clone();
        assert!(app.short_answer(request).await.is_none(), "{what}");
        let (response, _) = send(&app, copy).await;
        assert_eq!(response.status(), status, "{what}: the router's answer");
    }
}

#[tokio::test]
async fn a_lookup_needing_the_token_goes_to_the_router() {
    let app = warmed(TestApp::builder(Mode::Up).operator(operator_access(true))).await;
    assert!(app.short_answer(get_with(HIT, &[])).await.is_none());
    let (response, _) = send(&app, get_with(HIT, &[])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let token = format!("Bearer {OPERATOR_TOKEN}");
    assert!(
        app.short_answer(get_with(HIT, &[("authorization", &token)]))
            .await
            .is_some(),
        "with the token, a hit is a hit"
    );
}

#[tokio::test]
async fn a_blocked_client_goes_to_the_router() {
    let app = warmed(
        TestApp::builder(Mode::Up).lookup_limit(LookupLimitSettings {
            failures_per_minute: 1,
            burst: 1,
            exempt_loopback: false,
        }),
    )
    .await;
    let from = |uri: &str| {
        let mut request = get_with(uri, &[]);
        let peer: SocketAddr = "203.0.113.9:50000".parse().expect("an address");
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    assert!(
        app.short_answer(from(HIT)).await.is_some(),
        "not blocked yet"
    );
    for i in 0..2 {
        send(&app, from(&format!("/api/order/missing-{i}"))).await;
    }
    assert!(app.short_answer(from(HIT)).await.is_none(), "blocked");
    let (response, _) = send(&app, from(HIT)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_full_concurrency_bound_goes_to_the_router() {
    let app = warmed(TestApp::builder(Mode::Up)).await;
    let all = app
        .in_flight()
        .try_acquire_many(crate::http::MAX_IN_FLIGHT as u32)
        .expect("every slot free");
    assert!(app.short_answer(get_with(HIT, &[])).await.is_none());
    let (response, body) = send(&app, get_with(HIT, &[])).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "overloaded");
    drop(all);
    assert!(app.short_answer(get_with(HIT, &[])).await.is_some());
}
