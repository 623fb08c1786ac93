//! The generator for real use, run as the real binary against the real broker and a running
//! service: `--invalid-ratio` mixes in every kind of bad message and the service records each
//! with the reason it was made for; `--file` sends a file's lines; `--rate` paces.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use order_service::order::canonical_json;
use order_service::tools::generator::BadKind;
use order_service::tools::generator::{fake_messages, fake_orders};

use crate::common::app::TestApp;
use crate::common::binary::send_to;
use crate::common::counts::{Counts, counts};
use crate::common::wait::eventually;

/// Runs `order-service send <args>` against `app`'s broker and topic.
fn send(app: &TestApp, args: &[&str]) -> Output {
    send_to(&app.args.kafka)
        .args(args)
        .output()
        .expect("send runs")
}

/// Standard output's lines.
fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `orders` orders are stored and `rejected` rejections recorded.
async fn wait_for_counts(app: &TestApp, orders: i64, rejected: i64) {
    eventually(
        &format!("{orders} stored and {rejected} rejected"),
        || async {
            let want = Counts {
                stored: orders,
                rejected,
            };
            (counts(&app.store).await == want).then_some(())
        },
    )
    .await;
}

/// Stored ids, sorted.
async fn stored_ids(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT order_uid FROM orders ORDER BY order_uid")
        .fetch_all(app.store.pool())
        .await
        .expect("ids")
}

#[tokio::test]
async fn invalid_ratio_mixes_in_every_kind_of_bad_message_and_each_is_rejected_for_its_reason() {
    let app = TestApp::spawn().await;
    let (count, ratio, seed) = (220, 0.5, 5);
    let output = send(
        &app,
        &[
            "-n",
            &count.to_string(),
            "--invalid-ratio",
            &ratio.to_string(),
            "--seed",
            &seed.to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("sent 220 (invalid 110), failed 0, elapsed "),
        "{stderr}"
    );

    // What the generator made, by the same seed.
    let messages: Vec<_> = fake_messages(count, Some(seed), ratio).collect();
    let mut want_ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.order_uid.clone())
        .collect();
    let mut want_codes: BTreeMap<&str, i64> = BTreeMap::new();
    for kind in messages.iter().filter_map(|m| m.bad) {
        *want_codes.entry(kind.expected().code()).or_default() += 1;
    }
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.bad == Some(BadKind::Conflict))
            .count(),
        10,
        "110 bad messages, 11 kinds in turn"
    );

    // stdout: the id of each delivered valid order.
    let mut printed = lines(&output);
    printed.sort();
    want_ids.sort();
    assert_eq!(printed, want_ids);

    wait_for_counts(&app, 110, 110).await;
    assert_eq!(stored_ids(&app).await, want_ids, "every valid order stored");
    let recorded: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason_code, count(*) FROM rejected GROUP BY reason_code ORDER BY reason_code",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("rejections");
    let want: Vec<(String, i64)> = want_codes
        .into_iter()
        .map(|(code, n)| (code.to_owned(), n))
        .collect();
    assert_eq!(recorded, want, "each bad message rejected for its reason");
    app.stop_and_drop().await;
}

#[tokio::test]
async fn file_sends_each_non_empty_line_as_it_is() {
    let app = TestApp::spawn().await;
    let orders: Vec<_> = fake_orders(3, Some(21)).collect();
    let mut text = Vec::new();
    for order in &orders {
        text.extend_from_slice(canonical_json(order).as_bytes());
        text.extend_from_slice(b"\n\n");
    }
    text.extend_from_slice(b"{\"order_uid\": \"half\"\n");
    let path = std::env::temp_dir().join(format!("{}.jsonl", app.args.kafka.kafka_topic));
    std::fs::write(&path, &text).expect("write the file");

    let output = send(&app, &["--file", path.to_str().expect("a UTF-8 path")]);
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("sent 4 (invalid 1), failed 0"), "{stderr}");
    let mut want: Vec<String> = orders.iter().map(|o| o.order_uid.clone()).collect();
    want.sort();
    let mut printed = lines(&output);
    printed.sort();
    assert_eq!(printed, want, "the ids of the valid lines");

    wait_for_counts(&app, 3, 1).await;
    assert_eq!(stored_ids(&app).await, want);
    let (code, key): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT reason_code, key FROM rejected")
            .fetch_one(app.store.pool())
            .await
            .expect("the rejection");
    assert_eq!(code, "malformed_json");
    assert_eq!(key, None, "a line that is not JSON has no key");
    app.stop_and_drop().await;
}

#[tokio::test]
async fn file_dash_sends_the_lines_of_standard_input() {
    let app = TestApp::spawn().await;
    let orders: Vec<_> = fake_orders(2, Some(23)).collect();
    let mut child = send_to(&app.args.kafka)
        .args(["--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("send starts");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for order in &orders {
            stdin
                .write_all(canonical_json(order).as_bytes())
                .expect("write");
            stdin.write_all(b"\n").expect("write");
        }
    }
    let output = child.wait_with_output().expect("send ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("sent 2 (invalid 0), failed 0"), "{stderr}");
    let mut want: Vec<String> = orders.iter().map(|o| o.order_uid.clone()).collect();
    want.sort();
    let mut printed = lines(&output);
    printed.sort();
    assert_eq!(printed, want);
    wait_for_counts(&app, 2, 0).await;
    app.stop_and_drop().await;
}

#[tokio::test]
async fn a_failing_standard_output_stops_sending_but_every_message_sent_is_reported() {
    let app = TestApp::spawn().await;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full: every write to it fails");
    let output = send_to(&app.args.kafka)
        .args(["-n", "5000", "--seed", "8"])
        .stdout(full)
        .output()
        .expect("send runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: cannot write to standard output"),
        "{stderr}"
    );
    // The summary is still printed, and counts what was in flight when writing failed.
    let sent: i64 = stderr
        .split_once("sent ")
        .and_then(|(_, rest)| rest.split_once(" (invalid 0), failed 0"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("a summary: {stderr}"));
    assert!((1..5000).contains(&sent), "stopped early: {stderr}");
    wait_for_counts(&app, sent, 0).await;
    app.stop_and_drop().await;
}

#[tokio::test]
async fn rate_paces_the_messages() {
    let app = TestApp::spawn().await;
    // 20 messages at 40 per second: the last one leaves 19/40 s after the first.
    let start = Instant::now();
    let output = send(&app, &["-n", "20", "--rate", "40", "--seed", "3"]);
    let took = start.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines(&output).len(), 20);
    assert!(
        took >= Duration::from_millis(475),
        "20 messages at 40/s took only {took:?}"
    );
    app.stop_and_drop().await;
}
