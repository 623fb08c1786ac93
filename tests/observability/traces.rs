//! Traces of the real binary, exported over OTLP to a receiver the test starts
//! (`otlp.rs`): an ingested message's `traceparent` is continued by its batch's span (and
//! the database span under it), an HTTP request's `traceparent` by its server span, and
//! spans still queued at SIGTERM are flushed before the process exits.

use std::process::Command;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rdkafka::message::{Header, OwnedHeaders};

use crate::common::app::require_services;
use crate::common::binary;
use crate::common::database::drop_database;
use crate::common::kafka::{produce_with_headers, producer};
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::common::serve::Serve;
use crate::common::settings::{OPERATOR_TOKEN, fresh_args};
use crate::common::wait::eventually;
use crate::otlp::{Received, Receiver};
use order_service::infra::config::ServeArgs;

/// The route template of `/api/order/{order_uid}`, as the server span names it.
const ORDER_ROUTE: &str = "/api/order/{order_uid}";

/// A new random trace: its trace id, span id and `traceparent` (sampled).
fn new_trace() -> (String, String, String) {
    let trace = format!("{:032x}", rand::random::<u128>() | 1);
    let span = format!("{:016x}", rand::random::<u64>() | 1);
    let traceparent = format!("00-{trace}-{span}-01");
    (trace, span, traceparent)
}

/// The binary's `serve`, exporting to a receiver, with HTTP on the port it logged.
struct Traced {
    /// Its settings (database, topics, group).
    args: ServeArgs,
    /// The receiver of its spans.
    receiver: Receiver,
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
    async fn start(schedule_delay_ms: &str) -> Self {
        let mut args = fresh_args();
        require_services(&args).await;
        args.http_addr = ([127, 0, 0, 1], 0).into();
        let receiver = Receiver::start().await;
        let mut command: Command = binary::command("serve");
        command
            .env("DATABASE_URL", &args.database.database_url)
            .env("KAFKA_BROKERS", &args.kafka.kafka_brokers)
            .env("KAFKA_TOPIC", &args.kafka.kafka_topic)
            .env("KAFKA_DLQ_TOPIC", &args.kafka_dlq_topic)
            .env("KAFKA_GROUP_ID", &args.kafka_group_id)
            .env("HTTP_ADDR", args.http_addr.to_string())
            .env("OPERATOR_TOKEN", OPERATOR_TOKEN)
            .env("RUST_LOG", "info")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms);
        let serve = Serve::start(command, &args.kafka_group_id);
        let base = eventually("serve to log its HTTP address", || async {
            let log = std::fs::read_to_string(serve.log()).unwrap_or_default();
            let line = log.lines().find(|l| l.contains("HTTP server listening"))?;
            let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
            Some(format!("http://{addr}"))
        })
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
    async fn get(&self, path: &str, traceparent: Option<&str>) -> reqwest::Response {
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
    async fn stop(mut self) -> Receiver {
        self.serve.terminate_and_expect_clean_exit().await;
        drop_database(&self.args.database.database_url).await;
        self.receiver
    }
}

/// Whether `received` continues the producer's span `span` of trace `trace`: as its child,
/// or through a link.
fn continues(received: &Received, trace: &str, span: &str) -> bool {
    let as_child = hex::encode(&received.span.trace_id) == trace
        && hex::encode(&received.span.parent_span_id) == span;
    let as_link = received
        .span
        .links
        .iter()
        .any(|l| hex::encode(&l.trace_id) == trace && hex::encode(&l.span_id) == span);
    as_child || as_link
}

#[tokio::test]
async fn the_ingest_batch_and_an_http_request_continue_the_callers_traces() {
    let traced = Traced::start("100").await;

    // A message with a known traceparent, ingested.
    let (trace, span, traceparent) = new_trace();
    let headers = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some(traceparent.as_str()),
    });
    let producer = producer(&traced.args.kafka.kafka_brokers);
    let topic = &traced.args.kafka.kafka_topic;
    produce_with_headers(
        &producer,
        topic,
        Some(SAMPLE_UID),
        Some(SAMPLE.as_bytes()),
        Some(headers),
    )
    .await;
    let path = format!("/api/order/{SAMPLE_UID}");
    eventually("the order to be stored", || async {
        (traced.get(&path, None).await.status() == 200).then_some(())
    })
    .await;

    let batch = traced
        .receiver
        .wait_for(
            "the ingest batch span continuing the producer's trace",
            |r| r.span.name == "ingest batch" && continues(r, &trace, &span),
        )
        .await;
    assert_eq!(batch.service, "order-service", "the default service name");
    assert_eq!(batch.span.kind, SpanKind::Consumer as i32);
    assert_eq!(
        batch.attribute("messaging.destination.name").as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(
        batch.attribute("messaging.batch.message_count").as_deref(),
        Some("1")
    );
    // A batch of one message is that message's child (docs/operations.md, "Tracing").
    assert_eq!(hex::encode(&batch.span.trace_id), trace);
    assert_eq!(hex::encode(&batch.span.parent_span_id), span);

    let save = traced
        .receiver
        .wait_for("the save_batch span under the ingest batch", |r| {
            r.span.name == "save_batch" && r.span.parent_span_id == batch.span.span_id
        })
        .await;
    assert_eq!(save.span.trace_id, batch.span.trace_id);
    assert_eq!(save.span.kind, SpanKind::Client as i32);
    assert_eq!(save.attribute("db.system").as_deref(), Some("postgresql"));
    assert_eq!(save.attribute("db.operation").as_deref(), Some("INSERT"));
    assert_eq!(save.attribute("db.orders").as_deref(), Some("1"));

    // An HTTP request with a traceparent.
    let (trace, span, traceparent) = new_trace();
    let answer = traced.get(&path, Some(&traceparent)).await;
    assert_eq!(answer.status(), 200);
    let server = traced
        .receiver
        .wait_for("the server span of the traced request", |r| {
            hex::encode(&r.span.trace_id) == trace && r.span.kind == SpanKind::Server as i32
        })
        .await;
    assert_eq!(
        hex::encode(&server.span.parent_span_id),
        span,
        "the caller's span is the parent"
    );
    assert_eq!(
        server.span.name,
        format!("GET {ORDER_ROUTE}"),
        "the route template, not the path"
    );
    assert_eq!(server.attribute("http.route").as_deref(), Some(ORDER_ROUTE));
    assert_eq!(
        server.attribute("http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        server.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    let receiver = traced.stop().await;
    // No span carries the order's personal data (the sample's delivery name, phone, email).
    for received in receiver.spans() {
        let text = format!("{:?}", received.span);
        for personal in ["Test Testov", "+9720000000", "test@gmail.com"] {
            assert!(
                !text.contains(personal),
                "{personal} in span {}",
                received.span.name
            );
        }
    }
}

#[tokio::test]
async fn spans_still_queued_at_sigterm_are_flushed_before_the_process_exits() {
    // Ten minutes between scheduled exports: only the flush at shutdown sends this span.
    let traced = Traced::start("600000").await;
    let (trace, _, traceparent) = new_trace();
    assert_eq!(
        traced
            .get("/health/live", Some(&traceparent))
            .await
            .status(),
        200
    );
    let is_it = |r: &Received| hex::encode(&r.span.trace_id) == trace;
    assert!(
        !traced.receiver.spans().iter().any(is_it),
        "exported before shutdown: the schedule delay was not honoured"
    );
    let receiver = traced.stop().await;
    let flushed: Vec<Received> = receiver.spans().into_iter().filter(is_it).collect();
    assert_eq!(flushed.len(), 1, "{:#?}", receiver.summary());
    assert_eq!(flushed[0].span.name, "GET /health/live");
}
