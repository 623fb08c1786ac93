//! Traces of the real binary, exported over OTLP to a receiver the test starts
//! (`otlp.rs`): an ingested message's `traceparent` is continued by its batch's span (and
//! the database span under it), an HTTP request's `traceparent` by its server span, the
//! traces `send` starts are continued by ingest, spans still queued at SIGTERM are flushed
//! before the process exits, and a dead letter keeps its message's trace headers.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rdkafka::message::{Header, OwnedHeaders};

use crate::common::app::TestApp;
use crate::common::binary::send_to;
use crate::common::kafka::{dead_letters, produce_with_headers, producer};
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::common::wait::eventually;
use crate::otlp::Received;
use crate::traced::{Traced, continues, new_trace};

/// The route template of `/api/order/{order_uid}`, as the server span names it.
const ORDER_ROUTE: &str = "/api/order/{order_uid}";

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
    println!(
        "exported {:?} span {}: trace {}, parent {} (the producer's traceparent {traceparent})",
        batch.span.name,
        hex::encode(&batch.span.span_id),
        hex::encode(&batch.span.trace_id),
        hex::encode(&batch.span.parent_span_id),
    );

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
async fn every_message_send_produces_starts_a_trace_that_ingest_continues() {
    let traced = Traced::start("100").await;
    let sent = send_to(&traced.args.kafka)
        .args(["-n", "5"])
        .output()
        .expect("send runs");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    // What send put on the topic, read back from its start.
    let group = format!("{}_reader", traced.args.kafka_group_id);
    let messages = dead_letters(
        &traced.args.kafka.kafka_brokers,
        &group,
        &traced.args.kafka.kafka_topic,
        5,
    )
    .await;
    let mut traces = Vec::new();
    for message in &messages {
        let traceparent = message.header("traceparent");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(
            (parts[0], parts[3]),
            ("00", "01"),
            "version 00, sampled: {traceparent}"
        );
        traces.push((parts[1].to_owned(), parts[2].to_owned()));
    }
    traces.sort();
    traces.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(traces.len(), 5, "a new trace per message: {traces:?}");

    // Each is continued by the batch that ingested it (a batch of one as its child, a larger
    // one through a link).
    for (trace, span) in &traces {
        traced
            .receiver
            .wait_for(
                &format!("an ingest batch continuing send's trace {trace}"),
                |r| r.span.name == "ingest batch" && continues(r, trace, span),
            )
            .await;
    }
    traced.stop().await;
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

#[tokio::test]
async fn a_dead_letter_keeps_the_rejected_messages_trace_headers() {
    // A rejection moves the process's counters: one such test at a time.
    let _counters = crate::COUNTERS.lock().await;
    let app = TestApp::spawn().await;
    let (_, _, traceparent) = new_trace();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some(traceparent.as_str()),
        })
        .insert(Header {
            key: "tracestate",
            value: Some("vendor=opaque"),
        });
    let brokers = &app.args.kafka.kafka_brokers;
    let producer = producer(brokers);
    let topic = &app.args.kafka.kafka_topic;
    produce_with_headers(
        &producer,
        topic,
        Some("bad"),
        Some(b"not json"),
        Some(headers),
    )
    .await;
    let group = format!("{}_reader", app.args.kafka_group_id);
    let letters = dead_letters(brokers, &group, &app.args.kafka_dlq_topic, 1).await;
    assert_eq!(letters[0].header("reason_code"), "malformed_json");
    assert_eq!(letters[0].header("traceparent"), traceparent);
    assert_eq!(letters[0].header("tracestate"), "vendor=opaque");
    app.stop_and_drop().await;
}
