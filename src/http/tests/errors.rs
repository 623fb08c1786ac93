//! Error answers: internal text never leaks, every error carries the security headers, and
//! the bridge from the middleware's errors ([`AnswerErrors`]) answers each one.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use tower::ServiceExt;

use super::support::*;
use crate::http::error::ApiError;
use crate::http::middleware::error_answer::AnswerErrors;

#[tokio::test]
async fn internal_errors_do_not_leak() {
    let TestApp { app, .. } = test_app(Mode::Broken);
    let (response, body) = get(&app, "/api/order/known-1").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "internal");
    assert!(!String::from_utf8_lossy(&body).contains("secret"));
}

#[tokio::test]
async fn error_answers_carry_the_security_headers() {
    let down = test_app(Mode::Down).app;
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
    let up = test_app(Mode::Up).app;
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
    let service = AnswerErrors::new(NeverReady);
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
