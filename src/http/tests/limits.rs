//! The limits every request is held to: header size (431), control characters in the target
//! (400), the request timeout and load shedding (503), all before any lookup.

use std::time::Duration;

use axum::http::{Method, StatusCode};

use super::support::*;
use crate::http::Limits;
use crate::http::middleware::guard::has_control_character;

#[tokio::test]
async fn oversized_headers_are_431_before_any_lookup() {
    let limits = Limits {
        max_header_bytes: 1000,
        ..Limits::default()
    };
    let TestApp {
        app: small, store, ..
    } = TestApp::builder(Mode::Up).limits(limits).build();
    let with_headers = |headers: &[(&'static str, String)]| {
        // A stranger's request: the operator token would count against the limit.
        let mut request = anonymous(Method::GET, "/api/order/known-1");
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
    assert_eq!(store.lookups(), 1, "only the accepted one");

    // The default limit refuses a 64 KiB header.
    let default = test_app(Mode::Up).app;
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
    let TestApp { app, store, .. } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 0);

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
    let TestApp { app, store, .. } = TestApp::builder(Mode::Stalled).limits(limits).build();
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_error(
        &response,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "stalled lookup",
    );
    assert_eq!(header(&response, "retry-after"), Some("5"));
    assert_eq!(store.lookups(), 1);

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
    let TestApp { app, store, .. } = TestApp::builder(Mode::Gated).limits(limits).build();
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
    assert_eq!(store.lookups(), 2, "shed requests made no lookup");

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
