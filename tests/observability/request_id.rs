//! `x-request-id`: generated when the request has none, echoed when it has one, on every
//! answer (errors included).

use crate::common::app::TestApp;

#[tokio::test]
async fn a_request_id_is_generated_or_echoed() {
    let app = TestApp::spawn().await;

    let response = app.get("/health/live").await;
    let generated = response.headers()["x-request-id"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(
        generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    let again = app.get("/health/live").await;
    assert_ne!(
        again.headers()["x-request-id"],
        generated.as_str(),
        "a new id per request"
    );

    for path in ["/health/live", "/api/order/not-there", "/no/route"] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .header("x-request-id", "client-chosen-id-42")
            .send()
            .await
            .expect("the service answers");
        assert_eq!(
            response.headers()["x-request-id"],
            "client-chosen-id-42",
            "{path} ({})",
            response.status()
        );
    }
    app.stop_and_drop().await;
}
