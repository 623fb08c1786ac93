//! The limit on failed lookups on the real service over TCP: the peer address reaches the
//! handler (`serve` runs the router with connection info), so a client that is not exempt
//! gets its 404s up to the burst and then 429 with `Retry-After`.

use serde_json::Value;

use crate::common::app::TestApp;
use crate::common::settings::fresh_args;

#[tokio::test]
async fn a_client_past_its_burst_of_404s_is_answered_429_over_tcp() {
    let mut args = fresh_args();
    args.lookup_failures_per_minute = 1;
    args.lookup_failures_burst = 3;
    // The test's client is on 127.0.0.1, exempt by default.
    args.lookup_limit_exempt_loopback = false;
    let app = TestApp::spawn_with(args).await;

    for i in 0..3 {
        let response = app.get(&format!("/api/order/guess-{i}")).await;
        assert_eq!(response.status(), 404, "guess {i}");
    }
    let response = app.get("/api/order/guess-3").await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], "too_many_lookups", "{body}");
    assert!(body["message"].is_string(), "{body}");
    app.stop_and_drop().await;
}
