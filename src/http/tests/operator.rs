//! Operator access over the router: the lists, the event stream and the rejections answer 401
//! `unauthorized` (with `WWW-Authenticate`, and nothing from the store) to a request without
//! the token, with a wrong one, and to everyone when no token is configured; the token as a
//! bearer token or as the page's cookie lets the request in; order lookups stay open unless
//! configured otherwise.

use axum::http::{Method, StatusCode};

use super::support::*;
use crate::http::operator::OperatorAccess;

/// The operator endpoints.
const OPERATOR_PATHS: [&str; 3] = ["/api/orders", "/api/rejected", "/api/orders/stream"];

#[tokio::test]
async fn without_the_token_the_operator_endpoints_are_401_and_ask_the_store_nothing() {
    let f = test_app(Mode::Up);
    for path in OPERATOR_PATHS {
        for (what, request) in [
            ("no credentials", anonymous(Method::GET, path)),
            ("a wrong token", {
                let mut r = anonymous(Method::GET, path);
                let wrong = format!("Bearer {OPERATOR_TOKEN}-not");
                r.headers_mut()
                    .insert("authorization", wrong.parse().expect("a header"));
                r
            }),
            ("a wrong cookie", {
                let mut r = anonymous(Method::GET, path);
                r.headers_mut().insert(
                    "cookie",
                    "operator_token=guess-guess-guess-guess"
                        .parse()
                        .expect("a header"),
                );
                r
            }),
        ] {
            let (response, body) = send(&f.app, request).await;
            let what = format!("{path} with {what}");
            assert_error(
                &response,
                &body,
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                &what,
            );
            assert_eq!(
                header(&response, "www-authenticate"),
                Some("Bearer realm=\"order-service\""),
                "{what}"
            );
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("known-1"), "{what}: {text}");
        }
    }
    assert!(f.store.asked().is_empty(), "the store was asked for a list");
    assert_eq!(f.events.listeners(), 0, "a refused stream must not listen");
}

#[tokio::test]
async fn the_token_as_a_bearer_token_or_the_pages_cookie_lets_the_operator_in() {
    let f = test_app(Mode::Up);
    let (status, orders) = get_json(&f.app, "/api/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders[0]["order_uid"], "known-1");
    let mut by_cookie = anonymous(Method::GET, "/api/rejected");
    by_cookie.headers_mut().insert(
        "cookie",
        format!("lang=ru; operator_token={OPERATOR_TOKEN}")
            .parse()
            .expect("a header"),
    );
    let (response, body) = send(&f.app, by_cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("malformed_json"));
}

#[tokio::test]
async fn with_no_token_configured_nobody_gets_in() {
    let f = TestApp::builder(Mode::Up)
        .operator(OperatorAccess::new(None, false).expect("no token"))
        .build();
    for path in OPERATOR_PATHS {
        let (response, body) = send(&f.app, request(Method::GET, path)).await;
        assert_error(
            &response,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            path,
        );
    }
    // The order lookup stays open, as in the original service.
    let (status, _) = get_json(&f.app, "/api/order/known-1").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn order_lookups_need_the_token_only_when_configured() {
    let open = test_app(Mode::Up);
    let (response, _) = send(&open.app, anonymous(Method::GET, "/api/order/known-1")).await;
    assert_eq!(response.status(), StatusCode::OK);

    let closed = TestApp::builder(Mode::Up)
        .operator(operator_access(true))
        .build();
    let (response, body) = send(&closed.app, anonymous(Method::GET, "/api/order/known-1")).await;
    assert_error(
        &response,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "lookup",
    );
    assert!(!String::from_utf8_lossy(&body).contains("known-1"));
    let (response, _) = send(&closed.app, request(Method::GET, "/api/order/known-1")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_openapi_and_the_page_stay_open() {
    let f = test_app(Mode::Up);
    // `/metrics` too (tests/observability): here it would render the process-wide recorder.
    for path in ["/health/live", "/api/openapi.json", "/", "/assets/app.js"] {
        let (response, _) = send(&f.app, anonymous(Method::GET, path)).await;
        assert_ne!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
}
