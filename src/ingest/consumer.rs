//! The Kafka side of ingest: the consumer (committing only offsets the writer stores) and the
//! fetching task that hands messages to the writer through a bounded channel.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::status::{IngestContext, STATISTICS_INTERVAL_MS};
use crate::infra::config::KafkaArgs;
use crate::infra::kafka::client_config;
use crate::infra::metrics::names;

/// The ingest's consumer.
pub type Consumer = StreamConsumer<IngestContext>;

/// Who the ingest's consumer is in its group.
#[derive(Debug, Clone, Copy)]
pub struct GroupMember<'a> {
    /// The consumer group.
    pub group_id: &'a str,
    /// Static membership id, if any: a restart with the same id takes the partitions back
    /// at once instead of waiting for the old session to expire.
    pub instance_id: Option<&'a str>,
    /// How long the group waits for a silent member (`session.timeout.ms`).
    pub session_timeout: Duration,
}

/// A consumer in `member`'s group, subscribed to the orders topic, that commits only the
/// offsets the writer stores.
pub fn build_consumer(kafka: &KafkaArgs, member: GroupMember<'_>) -> anyhow::Result<Consumer> {
    let mut config = client_config(kafka);
    if let Some(instance_id) = member.instance_id {
        config.set("group.instance.id", instance_id);
    }
    let session_ms = member.session_timeout.as_millis();
    // librdkafka's heartbeat is every 3 s; a short session needs at least three per session.
    let heartbeat_ms = (session_ms / 3).min(3000);
    let consumer: Consumer = config
        .set("group.id", member.group_id)
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Prefetch at most this much (librdkafka's high-level consumer bounds its one queue,
        // all partitions together): when the writer falls behind (or the database is down and
        // the consumer paused) memory stays bounded.
        .set("queued.max.messages.kbytes", "16384")
        // Once that queue is full, fetch again 50 ms later, not 1 s (librdkafka's default):
        // the writer drains 16 MiB in well under a second and then sat idle waiting for the
        // next fetch (7-8 % of the time in a 200,000-order ingest on Apache Kafka).
        .set("fetch.queue.backoff.ms", "50")
        // A fetch waits at most 20 ms for data, not 500 ms. Data that arrives ends the wait
        // at once anyway; this bounds the wait of a partition that a fetch in flight does not
        // include (librdkafka keeps one fetch per broker), which is what a newly assigned
        // partition's first order waited for (about 600 ms on a topic `serve` just created;
        // make bench-freshness). The cost: an idle consumer fetches 50 times a second.
        .set("fetch.wait.max.ms", "20")
        // Statistics feed `kafka_consumer_lag` (see `IngestContext::stats`).
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(IngestContext::default())
        .context("cannot create the Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.kafka_topic])
        .with_context(|| format!("cannot subscribe to {}", kafka.kafka_topic))?;
    Ok(consumer)
}

/// Commits offset 0 of each of the orders topic's `partitions` for `group_id`, for a topic
/// that was created just now (so nothing before offset 0 can be missed). Without a committed
/// offset, a newly assigned partition first waits for librdkafka's lookup of its earliest
/// offset: about 100 ms for the first order on a new topic (make bench-freshness). A
/// failure is logged and harmless: the consumer then resets to the earliest offset itself.
pub async fn start_new_topic_at_zero(kafka: &KafkaArgs, group_id: &str, partitions: i32) {
    let config = client_config(kafka).set("group.id", group_id).clone();
    let topic = kafka.kafka_topic.clone();
    // The commit blocks until the coordinator answers: off the runtime's threads.
    let commit = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let consumer: BaseConsumer = config.create()?;
        let mut offsets = TopicPartitionList::new();
        for partition in 0..partitions {
            offsets.add_partition_offset(&topic, partition, Offset::Offset(0))?;
        }
        // A commit outside the group's generation: accepted while the group has no members.
        consumer.commit(&offsets, CommitMode::Sync)?;
        Ok(())
    });
    let result = commit
        .await
        .map_err(anyhow::Error::from)
        .and_then(|result| result);
    match result {
        Ok(()) => {
            tracing::info!(topic = %kafka.kafka_topic, "new topic: the group starts at offset 0")
        }
        Err(error) => tracing::debug!(%error, "could not commit offset 0 of the new topic"),
    }
}

/// Receives messages and sends them to the writer until `shutdown` is cancelled or the
/// writer is gone. A full channel makes this wait, which stops fetching.
pub async fn fetch(
    consumer: Arc<Consumer>,
    to_writer: mpsc::Sender<OwnedMessage>,
    shutdown: CancellationToken,
) {
    // Kafka errors are logged when they start and when they end, not one by one.
    let mut kafka_failing = false;
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message.detach(),
            Err(error) => {
                if kafka_failing {
                    tracing::debug!(%error, "Kafka consumer error");
                } else {
                    tracing::warn!(%error, "Kafka consumer error; the client reconnects by itself");
                    kafka_failing = true;
                }
                continue;
            }
        };
        metrics::counter!(names::ORDERS_CONSUMED).increment(1);
        if std::mem::take(&mut kafka_failing) {
            tracing::info!("Kafka consumer receiving again");
        }
        tracing::trace!(
            partition = message.partition(),
            offset = message.offset(),
            "fetched"
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            sent = to_writer.send(message) => if sent.is_err() { return },
        }
    }
}
