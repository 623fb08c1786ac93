//! The access log of the real binary at its default settings: one line per request, written
//! by its own thread, out while serve runs (within moments, not only once its buffer is
//! full), every line out by the time the process has exited. `RUST_LOG` silences it alone,
//! and in JSON it is the logger's JSON.

use crate::common::database::drop_database;
use crate::common::wait::eventually;
use crate::traced::start_binary;

#[tokio::test]
async fn a_request_s_access_line_is_out_while_serve_runs() {
    let (args, mut serve, base) = start_binary(&[]).await;
    request_missing_order(&base, "access-log-while-running").await;
    // One line is far from filling the buffer: only the flusher thread writes it out.
    eventually("the access line while serve runs", || async {
        let log = std::fs::read_to_string(serve.log()).unwrap_or_default();
        log.lines()
            .any(|line| {
                line.contains(" access: answered")
                    && line.contains("request_id=\"access-log-while-running\"")
            })
            .then_some(())
    })
    .await;
    serve.terminate_and_expect_clean_exit().await;
    drop_database(&args.database.database_url).await;
}

#[tokio::test]
async fn every_request_has_its_access_line_by_the_time_serve_has_exited() {
    // No RUST_LOG: the defaults, access log on.
    let (args, mut serve, base) = start_binary(&[]).await;
    let http = reqwest::Client::new();
    let requests = 20;
    for i in 0..requests {
        let response = http
            .get(format!("{base}/api/order/not-there-{i}"))
            .header("x-request-id", format!("access-log-test-{i}"))
            .send()
            .await
            .expect("serve answers");
        assert_eq!(response.status(), 404);
    }
    serve.terminate_and_expect_clean_exit().await;
    drop_database(&args.database.database_url).await;

    let log = std::fs::read_to_string(serve.log()).expect("serve's log");
    let access: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" access: answered"))
        .collect();
    for i in 0..requests {
        let id = format!("request_id=\"access-log-test-{i}\"}}");
        let line = access
            .iter()
            .find(|line| line.contains(&id))
            .unwrap_or_else(|| panic!("no access line for {id} in {:?}", serve.log()));
        assert!(line.contains("status=404"), "{line}");
        assert!(
            line.contains(&format!("path=/api/order/not-there-{i} ")),
            "{line}"
        );
    }
    assert!(
        !log.contains("access-log lines were dropped"),
        "nothing dropped at this rate: {:?}",
        serve.log()
    );
}

/// Requests `/api/order/not-there` from `base` with `request_id`: a 404.
async fn request_missing_order(base: &str, request_id: &str) {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/order/not-there"))
        .header("x-request-id", request_id)
        .send()
        .await
        .expect("serve answers");
    assert_eq!(response.status(), 404);
}

/// Starts serve with `env`, requests a missing order with `request_id`, then stops serve;
/// its log.
async fn one_request_logged_with(env: &[(&str, &str)], request_id: &str) -> String {
    let (args, mut serve, base) = start_binary(env).await;
    request_missing_order(&base, request_id).await;
    serve.terminate_and_expect_clean_exit().await;
    drop_database(&args.database.database_url).await;
    std::fs::read_to_string(serve.log()).expect("serve's log")
}

#[tokio::test]
async fn rust_log_silences_the_access_log_alone() {
    let log = one_request_logged_with(&[("RUST_LOG", "info,access=off")], "silenced").await;
    assert!(
        log.contains("HTTP server listening"),
        "INFO still logged: {log}"
    );
    assert!(
        !log.contains(" access: ") && !log.contains("silenced"),
        "no access line: {log}"
    );
}

#[tokio::test]
async fn in_json_the_access_line_is_one_json_object_with_the_request_s_fields() {
    let log = one_request_logged_with(&[("LOG_FORMAT", "json")], "json-access-line").await;
    let line = log
        .lines()
        .find(|line| line.contains("json-access-line"))
        .unwrap_or_else(|| panic!("no access line: {log}"));
    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
    assert_eq!(line["target"], "access", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["fields"]["message"], "answered", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
    assert!(line["fields"]["latency_ms"].is_f64(), "{line}");
    assert_eq!(line["span"]["request_id"], "json-access-line", "{line}");
    assert_eq!(line["span"]["path"], "/api/order/not-there", "{line}");
    assert_eq!(line["span"]["route"], "/api/order/{order_uid}", "{line}");
}
