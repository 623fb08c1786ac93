//! Kafka security against a real Apache Kafka node with a SASL_SSL listener (`sasl_node.rs`):
//! `send` and `serve` authenticate with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over TLS
//! verified by the test's CA, the dead-letter producer publishes with the same settings, a
//! wrong password or a wrong CA stops start-up within seconds naming the setting (and never
//! the password), and `--kafka-property` reaches librdkafka. One node for all of it (a JVM
//! start is the slow part), each step timed.

use std::process::Output;
use std::time::{Duration, Instant};

use order_service::infra::config::SaslMechanism;

use crate::common::app::TestApp;
use crate::common::binary;
use crate::common::database::{database_url, drop_database};
use crate::common::kafka::dead_letters_with;
use crate::common::names::Names;
use crate::common::settings::fresh_args;
use crate::common::tls::TestCa;
use crate::sasl_node::{SaslNode, text};

/// How long a refused start-up may take at most (the probe's own bound is 10 s).
const REFUSED_WITHIN: Duration = Duration::from_secs(15);

/// Runs `what`, prints its time, returns its result.
fn timed<T>(what: &str, run: impl FnOnce() -> T) -> T {
    let began = Instant::now();
    let result = run();
    println!("{what}: {:.2}s", began.elapsed().as_secs_f64());
    result
}

/// `order-service <subcommand>` with `env`, logs at trace level, run to its end.
fn run(subcommand: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = binary::command(subcommand);
    command.env("RUST_LOG", "trace").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

/// The ids `send` printed, one a line on standard output.
fn printed_ids(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `serve` on a fresh database with `env`, to a refused start-up; the database is dropped.
async fn refused_serve(what: &str, env: &[(&str, String)]) -> (Output, Duration) {
    let names = Names::unique("kafkasasl");
    let url = database_url(&names.name);
    let mut env = env.to_vec();
    env.extend([
        ("DATABASE_URL", url.clone()),
        ("KAFKA_TOPIC", names.topic.clone()),
        ("KAFKA_DLQ_TOPIC", names.dlq_topic.clone()),
        ("KAFKA_GROUP_ID", names.group.clone()),
        ("HTTP_ADDR", "127.0.0.1:0".to_owned()),
    ]);
    let began = Instant::now();
    let output = timed(what, || run("serve", &env, &[]));
    let took = began.elapsed();
    drop_database(&url).await;
    (output, took)
}

/// `send -n 1` with `env`, to a refused start-up, and how long it took.
fn refused_send(what: &str, env: &[(&str, String)]) -> (Output, Duration) {
    let began = Instant::now();
    let output = timed(what, || run("send", env, &["-n", "1"]));
    (output, began.elapsed())
}

/// `send` and then `serve` with `env` are each refused at start-up ("send {case}", "serve
/// {case}"), naming `setting` and showing no `secret`.
async fn assert_send_and_serve_refused(
    case: &str,
    env: &[(&str, String)],
    setting: &str,
    secret: &str,
) {
    let what = format!("send {case}");
    let (refused, took) = refused_send(&what, env);
    assert_refused(&what, &refused, took, setting, secret);
    let what = format!("serve {case}");
    let (refused, took) = refused_serve(&what, env).await;
    assert_refused(&what, &refused, took, setting, secret);
}

/// `output` is a refused start-up within [`REFUSED_WITHIN`] that names `setting` and shows
/// no `secret`.
fn assert_refused(what: &str, output: &Output, took: Duration, setting: &str, secret: &str) {
    let all = text(output);
    assert!(!output.status.success(), "{what} must not succeed: {all}");
    assert!(took < REFUSED_WITHIN, "{what} took {took:?}: {all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("{what}: no error line: {all}"));
    assert!(error.contains(setting), "{what}: {error}");
    assert!(
        !all.contains(secret),
        "{what} shows the password in its output"
    );
    println!("{what}: {error}");
}

#[tokio::test]
async fn send_serve_and_the_dead_letter_producer_work_over_sasl_ssl_and_refusals_stop_start_up() {
    let node = timed("start the SASL_SSL node", SaslNode::start);
    let names = Names::unique("kafkasasl");
    let topic = [("KAFKA_TOPIC", names.topic.clone())];

    // An unknown property is refused at start-up, by name (no broker needed).
    let unknown = timed("send with an unknown property", || {
        run(
            "send",
            &[&node.env("PLAIN", &node.password)[..], &topic].concat(),
            &["-n", "1", "--kafka-property", "no.such.property=hunter2"],
        )
    });
    let unknown_text = text(&unknown);
    assert!(!unknown.status.success(), "{unknown_text}");
    assert!(unknown_text.contains("no.such.property"), "{unknown_text}");
    assert!(!unknown_text.contains("hunter2"), "{unknown_text}");

    // (1) send with SCRAM-SHA-512 and the CA delivers orders and prints their ids.
    let env_512 = [&node.env("SCRAM-SHA-512", &node.password)[..], &topic].concat();
    let sent = timed("send 3 orders with SCRAM-SHA-512", || {
        run("send", &env_512, &["-n", "3"])
    });
    assert!(sent.status.success(), "{}", text(&sent));
    let ids = printed_ids(&sent);
    assert_eq!(ids.len(), 3, "{}", text(&sent));
    assert!(
        !text(&sent).contains(&node.password),
        "send shows the password"
    );

    // (3) PLAIN: send a bad message with it (for the dead-letter topic).
    let bad_file = std::env::temp_dir().join(format!("{}.jsonl", names.name));
    std::fs::write(&bad_file, "{\"order_uid\": \"not-an-order\"}\n").expect("written");
    let env_plain = [&node.env("PLAIN", &node.password)[..], &topic].concat();
    let bad = timed("send a bad message with PLAIN", || {
        run(
            "send",
            &env_plain,
            &["--file", bad_file.to_str().expect("UTF-8")],
        )
    });
    let _ = std::fs::remove_file(&bad_file);
    assert!(bad.status.success(), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("sent 1 (invalid 1)"),
        "{}",
        text(&bad)
    );

    // (1) serve with SCRAM-SHA-256 consumes them, stores them and serves them; (2) the bad
    // one reaches the dead-letter topic through the dead-letter producer, over SASL_SSL.
    let mut args = fresh_args();
    args.kafka.kafka_brokers = node.brokers();
    args.kafka.kafka_topic = names.topic.clone();
    args.kafka.security = node.security(SaslMechanism::ScramSha256, &node.password);
    let began = Instant::now();
    let app = TestApp::spawn_with(args).await;
    for id in &ids {
        let response = app.wait_for_order(id).await;
        let order: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(order["order_uid"], id.as_str());
    }
    println!(
        "serve with SCRAM-SHA-256: start, consume and serve 3 orders: {:.2}s",
        began.elapsed().as_secs_f64()
    );
    let began = Instant::now();
    let letters = dead_letters_with(
        node.client_config("SCRAM-SHA-512"),
        &format!("{}_reader", names.group),
        &app.args.kafka_dlq_topic,
        1,
    )
    .await;
    println!(
        "read the dead-letter topic with SCRAM-SHA-512: {:.2}s",
        began.elapsed().as_secs_f64()
    );
    assert_eq!(letters[0].header("source_topic"), names.topic);
    assert!(
        String::from_utf8_lossy(&letters[0].payload).contains("not-an-order"),
        "the dead letter carries the bad message"
    );
    app.stop_and_drop().await;

    // (4) A wrong password stops send and serve within seconds, naming the setting.
    let wrong = format!("Wrong{}", node.password);
    let env_wrong = [&node.env("SCRAM-SHA-256", &wrong)[..], &topic].concat();
    assert_send_and_serve_refused(
        "with a wrong password",
        &env_wrong,
        "KAFKA_SASL_PASSWORD",
        &wrong,
    )
    .await;

    // (5) A CA that did not sign the broker's certificate stops start-up, naming the file's
    // setting.
    let other_ca = TestCa::new("kafka-other");
    let env_other_ca = with_setting(
        [&node.env("SCRAM-SHA-512", &node.password)[..], &topic].concat(),
        "KAFKA_SSL_CA_LOCATION",
        |_| other_ca.ca_file().display().to_string(),
    );
    assert_send_and_serve_refused(
        "with a wrong CA",
        &env_other_ca,
        "KAFKA_SSL_CA_LOCATION",
        &node.password,
    )
    .await;

    // (6) `--kafka-property` reaches librdkafka: dialled as `localhost`, which its
    // certificate does not name, the broker fails host name verification, unless the
    // property turns that off.
    let env_localhost = with_setting(env_512.clone(), "KAFKA_BROKERS", |brokers| {
        brokers.replace("127.0.0.1", "localhost")
    });
    let (refused, took) =
        refused_send("send to localhost, verifying the host name", &env_localhost);
    assert_refused(
        "send to localhost",
        &refused,
        took,
        "KAFKA_SSL_CA_LOCATION",
        &node.password,
    );
    let sent = timed(
        "send to localhost with --kafka-property ssl.endpoint.identification.algorithm=none",
        || {
            run(
                "send",
                &env_localhost,
                &[
                    "-n",
                    "1",
                    "--kafka-property",
                    "ssl.endpoint.identification.algorithm=none",
                ],
            )
        },
    );
    assert!(sent.status.success(), "{}", text(&sent));
    assert_eq!(printed_ids(&sent).len(), 1, "{}", text(&sent));
}

/// `env` with the value of `setting` replaced by what `change` makes of it.
fn with_setting(
    mut env: Vec<(&'static str, String)>,
    setting: &str,
    change: impl Fn(&str) -> String,
) -> Vec<(&'static str, String)> {
    for (name, value) in &mut env {
        if *name == setting {
            *value = change(value);
        }
    }
    env
}
