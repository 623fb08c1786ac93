//! The harness of the tests of the real binary: its `serve` on fresh names with HTTP on the
//! port it logged ([`start_binary`]); for the trace tests, exporting its spans to a receiver
//! of the test's own (`otlp.rs`) at a given batch delay, a new random trace, and whether a
//! span continues a given one.

use std::process::Command;

use crate::common::app::require_services;
use crate::common::binary;
use crate::common::database::drop_database;
use crate::common::serve::Serve;
use crate::common::settings::{OPERATOR_TOKEN, fresh_args};
use crate::common::wait::eventually;
use crate::otlp::{Received, Receiver};
use order_service::infra::config::ServeArgs;

/// A new random trace: its trace id, span id and `traceparent` (sampled).
pub fn new_trace() -> (String, String, String) {
    let trace = format!("{:032x}", rand::random::<u128>() | 1);
    let span = format!("{:016x}", rand::random::<u64>() | 1);
    let traceparent = format!("00-{trace}-{span}-01");
    (trace, span, traceparent)
}

/// The binary's `serve`, exporting to a receiver, with HTTP on the port it logged.
pub struct Traced {
    /// Its settings (database, topics, group).
    pub args: ServeArgs,
    /// The receiver of its spans.
    pub receiver: Receiver,
    /// The process.
    serve: Serve,
    /// `http://127.0.0.1:<port>`.
    base: String,
    /// HTTP client.
    http: reqwest::Client,
}

impl Traced {
    /// Starts `serve` on fresh names, its spans exported to a new receiver every
    /// `schedule_delay_ms`, and waits until it is ready.
    pub async fn start(schedule_delay_ms: &str) -> Self {
        let receiver = Receiver::start().await;
        let (args, serve, base) = start_binary(&[
            ("RUST_LOG", "info"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms),
        ])
        .await;
        let traced = Self {
            args,
            receiver,
            serve,
            base,
            http: reqwest::Client::new(),
        };
        eventually("serve to be ready", || async {
            let ready = traced.get("/health/ready", None).await;
            (ready.status() == 200).then_some(())
        })
        .await;
        traced
    }

    /// `GET base + path` as the operator, with `traceparent` if given.
    pub async fn get(&self, path: &str, traceparent: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OPERATOR_TOKEN);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("serve answers {path} (log: {:?}): {e}", self.serve.log()))
    }

    /// SIGTERM, a clean exit, and the database dropped.
    pub async fn stop(mut self) -> Receiver {
        self.serve.terminate_and_expect_clean_exit().await;
        drop_database(&self.args.database.database_url).await;
        self.receiver
    }
}

/// Starts the binary's `serve` on fresh names with `env` added to its environment (only what
/// a test sets reaches it), HTTP on a free port; returns its settings, the process and
/// `http://<the address it logged>`.
pub async fn start_binary(env: &[(&str, &str)]) -> (ServeArgs, Serve, String) {
    let mut args = fresh_args();
    require_services(&args).await;
    args.http_addr = ([127, 0, 0, 1], 0).into();
    let mut command: Command = binary::command("serve");
    command
        .env("DATABASE_URL", &args.database.database_url)
        .env("KAFKA_BROKERS", &args.kafka.kafka_brokers)
        .env("KAFKA_TOPIC", &args.kafka.kafka_topic)
        .env("KAFKA_DLQ_TOPIC", &args.kafka_dlq_topic)
        .env("KAFKA_GROUP_ID", &args.kafka_group_id)
        .env("HTTP_ADDR", args.http_addr.to_string())
        .env("OPERATOR_TOKEN", OPERATOR_TOKEN)
        .envs(env.iter().copied());
    let serve = Serve::start(command, &args.kafka_group_id);
    let base = eventually("serve to log its HTTP address", || async {
        let log = std::fs::read_to_string(serve.log()).unwrap_or_default();
        let line = log.lines().find(|l| l.contains("HTTP server listening"))?;
        let addr = match serde_json::from_str::<serde_json::Value>(line) {
            // LOG_FORMAT=json
            Ok(line) => line["fields"]["addr"].as_str()?.to_owned(),
            Err(_) => line
                .split("addr=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_owned(),
        };
        Some(format!("http://{addr}"))
    })
    .await;
    (args, serve, base)
}

/// Whether `received` continues the producer's span `span` of trace `trace`: as its child,
/// or through a link.
pub fn continues(received: &Received, trace: &str, span: &str) -> bool {
    let as_child = hex::encode(&received.span.trace_id) == trace
        && hex::encode(&received.span.parent_span_id) == span;
    let as_link = received
        .span
        .links
        .iter()
        .any(|l| hex::encode(&l.trace_id) == trace && hex::encode(&l.span_id) == span);
    as_child || as_link
}
