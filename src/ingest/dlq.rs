//! The dead-letter topic: every rejection is also published there, with the reason and the
//! source topic, partition and offset in headers, and the original message's trace context
//! (`traceparent`, `tracestate`) copied as it was. Best effort: the `rejected` table is the
//! record of truth, so a failed publish is logged and never holds up ingest.

use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::infra::config::KafkaArgs;
use crate::infra::kafka::{KafkaContext, producer_config, with_extra_properties};
use crate::infra::kafka_trace::with_trace_headers;
use crate::order::MAX_MESSAGE_BYTES;
use crate::store::RejectedMessage;

/// How long one publish may wait for the broker before it is given up (and logged).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// A producer for the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetters {
    /// The producer; cheap to clone.
    producer: FutureProducer<KafkaContext>,
    /// The dead-letter topic.
    topic: String,
}

impl DeadLetters {
    /// A publisher to `topic` on `kafka`'s brokers.
    pub fn new(kafka: &KafkaArgs, topic: &str) -> anyhow::Result<Self> {
        // The same guarantees as `send`'s producer: idempotent, acks=all, a bounded delivery.
        let mut config = producer_config(kafka, PUBLISH_TIMEOUT);
        config
            .set("linger.ms", "20")
            // Room for a value of the contract's largest size plus key and headers.
            .set("message.max.bytes", (2 * MAX_MESSAGE_BYTES).to_string());
        let producer = with_extra_properties(&mut config, kafka)
            .create_with_context(KafkaContext::default())
            .context("cannot create the dead-letter producer")?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Queues the rejected message, whose headers were `original`, for the dead-letter topic;
    /// a task logs the outcome.
    pub fn publish(&self, rejected: &RejectedMessage<'_>, original: Option<&OwnedHeaders>) {
        let partition = rejected.origin.partition.to_string();
        let offset = rejected.origin.offset.to_string();
        let mut headers = dead_letter_headers(rejected, original);
        let mut payload = rejected.origin.payload;
        if let Some(value) = payload.filter(|value| value.len() > MAX_MESSAGE_BYTES) {
            // Too large for the broker too; the rejected table keeps the bytes.
            headers = headers.insert(header("payload_omitted_bytes", &value.len().to_string()));
            payload = None;
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = rejected.origin.key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let source = format!("{}/{partition}@{offset}", rejected.origin.topic);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => {
                            tracing::debug!(%source, "rejection published to the dead-letter topic")
                        }
                        Ok(Err((error, _))) => {
                            tracing::warn!(%source, %error, "dead-letter publish failed; the rejected table has it")
                        }
                        Err(_) => {
                            tracing::warn!(%source, "dead-letter publish cancelled; the rejected table has it")
                        }
                    }
                });
            }
            Err((error, _)) => {
                tracing::warn!(%source, %error, "dead-letter publish refused; the rejected table has it");
            }
        }
    }
}

/// The headers of `rejected`'s dead letter: why and where from, and the trace context of the
/// `original` headers.
fn dead_letter_headers(
    rejected: &RejectedMessage<'_>,
    original: Option<&OwnedHeaders>,
) -> OwnedHeaders {
    let headers = OwnedHeaders::new()
        .insert(header("reason", &rejected.rejection.to_string()))
        .insert(header("reason_code", rejected.rejection.kind.code()))
        .insert(header("source_topic", rejected.origin.topic))
        .insert(header(
            "source_partition",
            &rejected.origin.partition.to_string(),
        ))
        .insert(header("source_offset", &rejected.origin.offset.to_string()));
    with_trace_headers(headers, original)
}

/// A header with a text value.
fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers as _;

    use super::*;
    use crate::infra::kafka_trace::{TRACEPARENT, TRACESTATE};
    use crate::order::{RejectKind, Rejection};
    use crate::store::MessageOrigin;

    #[test]
    fn a_dead_letter_carries_the_reason_the_source_and_the_messages_trace_context() {
        let rejection = Rejection::message(RejectKind::EmptyMessage, "");
        let rejected = RejectedMessage {
            origin: MessageOrigin {
                topic: "orders",
                partition: 2,
                offset: 41,
                key: None,
                payload: None,
            },
            rejection: &rejection,
        };
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let original = OwnedHeaders::new()
            .insert(header(TRACEPARENT, traceparent))
            .insert(header(TRACESTATE, "vendor=abc"));
        let headers = dead_letter_headers(&rejected, Some(&original));
        let value = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(value("source_topic").as_deref(), Some("orders"));
        assert_eq!(value("source_partition").as_deref(), Some("2"));
        assert_eq!(value("source_offset").as_deref(), Some("41"));
        assert_eq!(value("reason_code").as_deref(), Some("empty_message"));
        assert_eq!(value(TRACEPARENT).as_deref(), Some(traceparent));
        assert_eq!(value(TRACESTATE).as_deref(), Some("vendor=abc"));

        let untraced = dead_letter_headers(&rejected, None);
        assert!(untraced.iter().all(|h| h.key != TRACEPARENT));
        assert_eq!(untraced.count(), 5);
    }
}
