//! `GET /api/order/{order_uid}`: hit and miss, the id rule, 404, 503 unless cached, one
//! database read for many concurrent misses, the short memory of ids not found, `ETag` and
//! `If-None-Match`, the cache turned off, and serving during the warm-up.

use std::time::Duration;

use crate::http::front::Front;
use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use bytes::Bytes;

use super::support::*;
use crate::cache::OrderCache;

#[tokio::test]
async fn a_miss_reads_the_store_then_a_hit_does_not() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
    let (first, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "x-cache"), Some("miss"));
    assert_eq!(header(&first, "content-type"), Some("application/json"));
    assert_eq!(body.as_ref(), ORDER);

    let (second, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(header(&second, "x-cache"), Some("hit"));
    assert_eq!(body.as_ref(), ORDER, "same bytes from cache and store");
    assert_eq!(store.lookups(), 1);
}

#[tokio::test]
async fn a_bad_id_is_refused_before_any_lookup() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 0);
}

#[tokio::test]
async fn an_unknown_id_is_404() {
    let up = test_app(Mode::Up).app;
    let (response, body) = get(&up, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}

#[tokio::test]
async fn a_down_database_is_503_unless_cached() {
    let TestApp { app, cache, .. } = test_app(Mode::Down);
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
async fn an_id_of_65_characters_or_more_is_refused_before_any_lookup() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
    let longest = "a".repeat(64);
    let (response, body) = get(&app, &format!("/api/order/{longest}")).await;
    assert_error(
        &response,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "64 chars",
    );
    assert_eq!(store.lookups(), 1, "64 chars are looked up");
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
    assert_eq!(store.lookups(), 1, "no lookup for a long id");
}

/// Sends `GET uri` with `If-None-Match: value`.
async fn get_if_none_match(app: &Front, uri: &str, value: &str) -> (Response<Body>, Bytes) {
    let mut request = request(Method::GET, uri);
    request
        .headers_mut()
        .insert("if-none-match", value.parse().expect("a header value"));
    send(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_misses_make_one_database_read() {
    let t = test_app(Mode::Gated);
    let (at_the_gate, answers) = concurrent_gets(&t, "/api/order/known-1", 32).await;
    assert_eq!(at_the_gate, 1, "the others wait");
    for (response, body) in answers {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body.as_ref(), ORDER);
    }
    assert_eq!(t.store.lookups(), 1, "one database read");

    // The same for an id that does not exist: one read, every request 404.
    let (_, answers) = concurrent_gets(&t, "/api/order/unknown-2", 16).await;
    for (response, body) in answers {
        assert_error(
            &response,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown",
        );
    }
    assert_eq!(t.store.lookups(), 2, "one more read");
}

#[tokio::test]
async fn an_id_not_found_is_remembered_briefly_and_an_arriving_order_is_visible_at_once() {
    let TestApp {
        app, store, cache, ..
    } = test_app(Mode::Up);
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(store.lookups(), 1, "the second 404 comes from memory");

    // Past the negative TTL, the database is asked again.
    tokio::time::sleep(crate::cache::NEGATIVE_TTL + Duration::from_millis(500)).await;
    let (response, _) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(store.lookups(), 2, "asked again");

    // Ingest stores the order and caches it: served at once, though just remembered absent.
    cache.insert("unknown-2", ORDER).await;
    let (response, body) = get(&app, "/api/order/unknown-2").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-cache"), Some("hit"));
    assert_eq!(body.as_ref(), ORDER);
    assert_eq!(store.lookups(), 2);
}

#[tokio::test]
async fn an_order_has_a_strong_etag_and_if_none_match_is_304() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 2, "known-1 read once");

    let down = test_app(Mode::Down).app;
    let (response, _) = get(&down, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "etag"), None);
    assert_eq!(header(&response, "cache-control"), None);
}

#[tokio::test]
async fn with_the_cache_off_every_read_is_a_miss_with_the_same_bytes_and_tag() {
    let on = test_app(Mode::Up).app;
    let (response, _) = get(&on, "/api/order/known-1").await;
    let etag = header(&response, "etag").expect("an ETag").to_owned();

    let TestApp {
        app: off, store, ..
    } = TestApp::builder(Mode::Up)
        .cache(OrderCache::new(Duration::from_secs(60), 0))
        .build();
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
    assert_eq!(store.lookups(), 5, "nothing remembered");
}

#[tokio::test]
async fn orders_are_served_while_the_warm_up_is_still_running() {
    let TestApp {
        app, store, cache, ..
    } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 1);
}
