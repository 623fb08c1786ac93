//! What every request leaves behind: its request id on the response, and its access-log line.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::support::*;

#[tokio::test]
async fn a_request_id_is_echoed_or_generated() {
    let TestApp { app, .. } = test_app(Mode::Up);
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
    // tracing-core caches each callsite's interest for the whole process, and while only one
    // dispatcher exists it asks the registering thread's own, which for another test's thread
    // is none: a callsite that test hits first would be cached as disabled. With a second
    // dispatcher alive, every registration asks all of them, this one included.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let TestApp { app, .. } = test_app(Mode::Up);
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
