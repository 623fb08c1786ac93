//! The span of each ingested batch (`ingest batch`, DEBUG, so that logs show it only when
//! asked to; exported whenever traces are): it continues the producers' traces through the
//! W3C `traceparent` header of its messages. A batch has many parents, so each message's
//! trace becomes a span link; a batch of one message that has a `traceparent` is a child of
//! that message's span instead (same trace id, that span as parent).

use opentelemetry::trace::SpanContext;
use rdkafka::Message as _;
use rdkafka::message::OwnedMessage;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::infra::kafka_trace::KafkaHeaders;
use crate::infra::otel;

/// The span of writing `batch`. The headers are read only when traces are exported.
pub fn batch_span(batch: &[OwnedMessage]) -> Span {
    let span = tracing::debug_span!(
        "ingest batch",
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = batch.first().map_or("", |m| m.topic()),
        messaging.batch.message_count = batch.len(),
    );
    if !otel::enabled() || span.is_disabled() {
        return span;
    }
    let mut parents = batch.iter().filter_map(producer_span);
    match batch {
        [_] => {
            if let Some(parent) = parents.next()
                && let Err(error) = span.set_parent(otel::child_of(parent))
            {
                tracing::debug!(%error, "the batch span keeps no parent");
            }
        }
        _ => parents.for_each(|parent| span.add_link(parent)),
    }
    span
}

/// The span of the producer of `message`, if its `traceparent` names one.
fn producer_span(message: &OwnedMessage) -> Option<SpanContext> {
    otel::remote_span(&KafkaHeaders(message.headers()?))
}
