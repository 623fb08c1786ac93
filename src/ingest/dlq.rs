//! The dead-letter topic: every rejection is also published there, with the reason and the
//! source topic, partition and offset in headers. Best effort: the `rejected` table is the
//! record of truth, so a failed publish is logged and never holds up ingest.

use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::infra::config::KafkaArgs;
use crate::infra::kafka::{KafkaContext, producer_config, with_extra_properties};
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

    /// Queues the rejected message for the dead-letter topic; a task logs the outcome.
    pub fn publish(&self, rejected: &RejectedMessage<'_>) {
        let partition = rejected.origin.partition.to_string();
        let offset = rejected.origin.offset.to_string();
        let reason = rejected.rejection.to_string();
        let headers = OwnedHeaders::new()
            .insert(header("reason", &reason))
            .insert(header("reason_code", rejected.rejection.kind.code()))
            .insert(header("source_topic", rejected.origin.topic))
            .insert(header("source_partition", &partition))
            .insert(header("source_offset", &offset));
        let mut headers = headers;
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

/// A header with a text value.
fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
