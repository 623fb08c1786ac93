//! What is routed and how: the page and its assets, no path outside the routes (404
//! `no_route`), only GET and HEAD (405 with `Allow`), and HEAD answered like GET without a body.

use axum::http::{Method, StatusCode};

use super::support::*;

#[tokio::test]
async fn the_page_and_security_headers() {
    let TestApp { app, .. } = test_app(Mode::Up);
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
async fn no_path_leads_outside_the_routes() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 0);
}

#[tokio::test]
async fn only_get_and_head_are_allowed() {
    let TestApp { app, store, .. } = test_app(Mode::Up);
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
    assert_eq!(store.lookups(), 0);
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
    let TestApp { app, .. } = test_app(Mode::Up);
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
