//! The web page and the API behind it, against the real service, broker and database:
//! the lists and the event stream over real HTTP, and the page itself in Debian's headless
//! Chromium (`tests/browser/page.test.mjs`, driven by playwright-core from npm).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::common::app::TestApp;
use crate::common::sample::{SAMPLE, SAMPLE_UID, with_all};
use crate::common::wait::eventually;

/// What the hostile order's `delivery.name` holds.
const XSS_NAME: &str = r#"<img src=x onerror="window.__xss=1;console.log('XSS')">"#;

/// A string inside the poison message, to find it in the rejected panel.
const POISON_MARK: &str = "poison-mark-7f3a";

/// The sample order with another id and, where given, other text in its fields.
fn order_with(uid: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut changes = vec![("/order_uid", Value::from(uid))];
    changes.extend(fields.iter().map(|&(ptr, value)| (ptr, Value::from(value))));
    with_all(&changes)
}

/// An order whose text fields hold markup and script, valid under the contract.
fn hostile_order(uid: &str) -> Vec<u8> {
    order_with(
        uid,
        &[
            ("/delivery/name", XSS_NAME),
            (
                "/delivery/address",
                "<script>window.__xss=2;console.log('XSS')</script>",
            ),
            ("/delivery/city", r#""><svg onload=console.log('XSS')>"#),
            ("/customer_id", "<img src=x onerror=alert('XSS')>"),
            ("/items/0/name", "<script>console.log('XSS')</script>"),
            ("/items/0/brand", "<b onmouseover=alert('XSS')>bold</b>"),
        ],
    )
}

/// A message that is not JSON, with [`POISON_MARK`] in it.
fn poison() -> Vec<u8> {
    format!("{{\"order_uid\": \"{POISON_MARK}\", <b>not json\u{1b}[31m").into_bytes()
}

/// Reads the event stream until `needle` has arrived; returns what was read.
async fn read_stream_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on the stream within 10 s: {seen:?}"))
            .expect("the stream reads")
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}: {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn lists_and_the_event_stream_over_http() {
    let app = TestApp::spawn().await;
    let mut stream = app.get("/api/orders/stream").await;
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().ok(),
        Some("text/event-stream")
    );
    let mut seen = String::new();
    read_stream_until(&mut stream, &mut seen, "retry:").await;

    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.produce(None, Some(&poison())).await;
    read_stream_until(&mut stream, &mut seen, SAMPLE_UID).await;
    let data = seen
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let event: Value = serde_json::from_str(data).expect("the event is JSON");
    assert!(seen.contains("event: order\n"), "{seen}");
    assert_eq!(event["order_uid"], SAMPLE_UID);
    assert_eq!(event["amount"], 1817);
    assert_eq!(event["currency"], "USD");

    // Without the operator token, none of the three says anything about the orders.
    for path in ["/api/orders", "/api/rejected", "/api/orders/stream"] {
        let refused = app.get_anonymous(path).await;
        assert_eq!(refused.status(), 401, "{path}");
        assert_eq!(
            refused.headers()["www-authenticate"].to_str().ok(),
            Some("Bearer realm=\"order-service\""),
            "{path}"
        );
        let body = refused.text().await.expect("a body");
        let json: Value = serde_json::from_str(&body).expect("the usual JSON error body");
        assert_eq!(json["error"], "unauthorized", "{path}");
        assert!(
            !body.contains(SAMPLE_UID) && !body.contains("Testov"),
            "{path}: {body}"
        );
    }
    // The page's way: the token in the operator_token cookie.
    let by_cookie = app
        .http
        .get(format!("{}/api/orders", app.base))
        .header(
            "cookie",
            format!("operator_token={}", crate::common::settings::OPERATOR_TOKEN),
        )
        .send()
        .await
        .expect("the service answers");
    assert_eq!(by_cookie.status(), 200);

    let orders: Value = app
        .get("/api/orders?limit=5")
        .await
        .json()
        .await
        .expect("JSON");
    let first = &orders[0];
    assert_eq!(first["order_uid"], SAMPLE_UID);
    assert_eq!(first["track_number"], "WBILMTESTTRACK");
    assert_eq!(first["customer_id"], "test");
    assert_eq!(first["delivery_name"], "Test Testov");
    assert_eq!(first["delivery_city"], "Kiryat Mozkin");
    assert_eq!(first["item_count"], 1);
    assert_eq!(first["date_created"], "2021-11-26T06:22:19Z");
    assert!(
        first["stored_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );

    let rejected: Value = eventually("the poison message to be listed", || async {
        let list: Value = app.get("/api/rejected").await.json().await.ok()?;
        (list.as_array()?.len() == 1).then_some(list)
    })
    .await;
    let poison_row = &rejected[0];
    assert_eq!(poison_row["reason_code"], "malformed_json");
    let preview = poison_row["payload_preview"].as_str().expect("a preview");
    assert!(preview.contains(POISON_MARK), "{preview}");
    assert!(
        !preview.contains('\u{1b}'),
        "control characters replaced: {preview:?}"
    );
    assert_eq!(poison_row["payload_bytes"], poison().len());
    assert!(poison_row["offset"].is_i64() && poison_row["partition"].is_i64());

    let newest_first: Value = {
        let uid = "second-order";
        app.produce(Some(uid), Some(&order_with(uid, &[]))).await;
        read_stream_until(&mut stream, &mut seen, uid).await;
        app.get("/api/orders").await.json().await.expect("JSON")
    };
    assert_eq!(newest_first[0]["order_uid"], "second-order");
    assert_eq!(newest_first[1]["order_uid"], SAMPLE_UID);

    let bad = app.get("/api/rejected?limit=1000").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_limit");

    // Stopping with a stream open: the stream ends and the service stops promptly.
    let stopping = tokio::spawn(app.stop_and_drop());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end at shutdown");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the service stops within 10 s with a stream open")
        .expect("no panic");
}

/// `tests/browser`, where the script and its node_modules are.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Fails the test with what to run when node, its modules or Chromium are missing.
fn require_browser_tools(chromium: &Path) {
    let hint = "run `bash scripts/test-tools.sh` to install them";
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "node is not installed: {hint}"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules is missing playwright-core: {hint}"
    );
    assert!(
        chromium.exists(),
        "{} is missing (Debian package chromium): {hint}",
        chromium.display()
    );
}

#[tokio::test]
async fn the_page_in_a_real_browser() {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    require_browser_tools(&chromium);
    let app = TestApp::spawn().await;
    let xss_id = "xss-order";
    let live_id = "live-order";
    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.produce(Some(xss_id), Some(&hostile_order(xss_id)))
        .await;
    // A valid JSON order that breaks a rule, for the rejected panel beside the poison.
    let bad_phone = order_with("bad-phone", &[("/delivery/phone", "call me")]);
    app.produce(Some("bad-phone"), Some(&bad_phone)).await;
    app.wait_for_order(SAMPLE_UID).await;
    app.wait_for_order(xss_id).await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut screenshots = vec![root.join("target/screenshot.png")];
    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        screenshots.push(root.join("docs/screenshot.png"));
    }
    let screenshots: Vec<String> = screenshots
        .iter()
        .map(|p| p.display().to_string())
        .collect();

    let mut node = Command::new("node")
        .arg("page.test.mjs")
        .current_dir(browser_dir())
        .env("BASE_URL", &app.base)
        .env("SAMPLE_ID", SAMPLE_UID)
        .env("XSS_ID", xss_id)
        .env("XSS_TEXT", XSS_NAME)
        .env("LIVE_ID", live_id)
        .env("POISON_MARK", POISON_MARK)
        .env("OPERATOR_TOKEN", crate::common::settings::OPERATOR_TOKEN)
        .env("SCREENSHOTS", screenshots.join(","))
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdin = node.stdin.take().expect("stdin");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut output = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("node's output reads") {
            if line == "READY live" {
                let live = order_with(
                    live_id,
                    &[
                        ("/delivery/name", "Анна Смирнова"),
                        ("/delivery/city", "Москва"),
                        ("/payment/currency", "EUR"),
                    ],
                );
                app.produce(Some(live_id), Some(&live)).await;
                app.produce(None, Some(&poison())).await;
                stdin.write_all(b"PRODUCED\n").await.expect("stdin");
                stdin.flush().await.expect("stdin");
            }
            output.push(line);
        }
        node.wait_with_output().await.expect("node finishes")
    };
    let finished = tokio::time::timeout(Duration::from_secs(180), run).await;
    let output_text = output.join("\n");
    let finished = finished
        .unwrap_or_else(|_| panic!("the browser test did not finish in 180 s:\n{output_text}"));
    let stderr = String::from_utf8_lossy(&finished.stderr);
    println!("{output_text}");
    assert!(
        finished.status.success(),
        "the browser test failed ({}):\n{output_text}\nstderr:\n{stderr}",
        finished.status
    );
    for check in [
        "ok - the sample order, typed in, shows its fields, items and totals",
        "ok - an unknown id shows \"not found\"",
        "ok - an invalid id shows the validation message",
        "ok - markup and script in order fields show as text and run nothing",
        "ok - a newly produced order appears in the live list within 5 seconds",
        "ok - an order that arrived live while the list loaded stays in the list",
        "ok - a poison message appears in the rejected panel",
        "PASSED",
    ] {
        assert!(
            output.iter().any(|line| line.starts_with(check)),
            "no {check:?} in:\n{output_text}"
        );
    }
    assert!(
        Path::new(&screenshots[0]).exists(),
        "no screenshot at {}",
        screenshots[0]
    );
    app.stop_and_drop().await;
}
