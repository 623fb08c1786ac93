//! The Kafka side of ingest: the consumer (committing only offsets the writer stores) and the
//! fetching task that hands messages to the writer through a bounded channel.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::context::{IngestContext, STATISTICS_INTERVAL_MS};
use super::status::ConsumerStatus;
use crate::infra::config::{GroupProtocol, KafkaArgs};
use crate::infra::kafka::{client_config, with_extra_properties};
use crate::infra::metrics::names;

/// The ingest's consumer.
pub type Consumer = StreamConsumer<IngestContext>;

/// Who the ingest's consumer is in its group.
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// The consumer group.
    pub group_id: String,
    /// Static membership id, if any: a restart with the same id takes the partitions back
    /// at once instead of waiting for the old session to expire.
    pub instance_id: Option<String>,
    /// The group protocol (`group.protocol`).
    pub protocol: GroupProtocol,
    /// How long the group waits for a silent member (`session.timeout.ms`); the classic
    /// protocol's only: with KIP-848 the broker's setting rules.
    pub session_timeout: Duration,
}

/// A consumer in `member`'s group, subscribed to the orders topic, that commits only the
/// offsets the writer stores.
pub fn build_consumer(kafka: &KafkaArgs, member: &GroupMember) -> anyhow::Result<Consumer> {
    build_consumer_reporting_to(kafka, member, Arc::default())
}

/// [`build_consumer`], keeping `status` up to date (a consumer that replaces another keeps
/// reporting where the first did).
pub(super) fn build_consumer_reporting_to(
    kafka: &KafkaArgs,
    member: &GroupMember,
    status: Arc<ConsumerStatus>,
) -> anyhow::Result<Consumer> {
    let consumer: Consumer = with_extra_properties(&mut consumer_config(kafka, member), kafka)
        .create_with_context(IngestContext::new(status))
        .context("cannot create the Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.kafka_topic])
        .with_context(|| format!("cannot subscribe to {}", kafka.kafka_topic))?;
    Ok(consumer)
}

/// The settings of the ingest's consumer.
fn consumer_config(kafka: &KafkaArgs, member: &GroupMember) -> ClientConfig {
    let mut config = client_config(kafka);
    if let Some(instance_id) = &member.instance_id {
        config.set("group.instance.id", instance_id);
    }
    config
        .set("group.id", &member.group_id)
        .set("group.protocol", member.protocol.as_str());
    match member.protocol {
        GroupProtocol::Classic => {
            let session_ms = member.session_timeout.as_millis();
            // librdkafka's heartbeat is every 3 s; a short session needs at least three per
            // session.
            let heartbeat_ms = (session_ms / 3).min(3000);
            config
                .set("session.timeout.ms", session_ms.to_string())
                .set("heartbeat.interval.ms", heartbeat_ms.to_string());
        }
        // The broker owns the session and the heartbeat; librdkafka refuses these settings.
        GroupProtocol::Consumer => {}
    }
    config
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Prefetch at most this much (librdkafka's high-level consumer bounds its one queue,
        // all partitions together): when the writer falls behind (or the database is down and
        // the consumer paused) memory stays bounded. 4 MiB is about 3,000 orders, three
        // batches ahead of the writer, which keeps it busy; 16 MiB added 20 MiB to the peak
        // RSS of an ingest and nothing to its rate (docs/benchmarks.md).
        .set("queued.max.messages.kbytes", "4096")
        // Once that queue is full, fetch again 50 ms later, not 1 s (librdkafka's default):
        // the writer drains the queue in well under a second and then sat idle waiting for the
        // next fetch (7-8 % of the time in a 200,000-order ingest on Apache Kafka).
        .set("fetch.queue.backoff.ms", "50")
        // A fetch waits at most 20 ms for data, not 500 ms. Data that arrives ends the wait
        // at once anyway; this bounds the wait of a partition that a fetch in flight does not
        // include (librdkafka keeps one fetch per broker), which is what a newly assigned
        // partition's first order waited for (about 600 ms on a topic `serve` just created;
        // make bench-freshness). The cost: an idle consumer fetches 50 times a second.
        .set("fetch.wait.max.ms", "20")
        // Statistics feed `kafka_consumer_lag` and the brokers' reachability (see
        // `IngestContext::stats`).
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    config
}

/// Commits offset 0 of each of the orders topic's `partitions` for `group_id`, for a topic
/// that was created just now (so nothing before offset 0 can be missed). Without a committed
/// offset, a newly assigned partition first waits for librdkafka's lookup of its earliest
/// offset: about 100 ms for the first order on a new topic (make bench-freshness). A
/// failure is logged and harmless: the consumer then resets to the earliest offset itself.
pub async fn start_new_topic_at_zero(kafka: &KafkaArgs, group_id: &str, partitions: i32) {
    let config =
        with_extra_properties(client_config(kafka).set("group.id", group_id), kafka).clone();
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

/// Why fetching ended.
#[derive(Debug)]
pub enum Fetched {
    /// Shutdown, or the writer is gone.
    Stopped,
    /// librdkafka raised a fatal error: this consumer can fetch no more and must be replaced
    /// (with KIP-848, for example, a static member that restarts before its old session
    /// expired is fenced with `UNRELEASED_INSTANCE_ID`).
    Fatal(KafkaError),
}

/// Receives messages and sends each to the writer of its partition (partition number modulo
/// writers, so a partition is always written by the same one, in order) until `shutdown` is
/// cancelled, a writer is gone or the consumer fails for good. A full channel makes this
/// wait, which stops fetching.
pub async fn fetch(
    consumer: Arc<Consumer>,
    to_writers: Vec<mpsc::Sender<OwnedMessage>>,
    shutdown: CancellationToken,
) -> Fetched {
    // Kafka errors are logged when they start and when they end, not one by one.
    let mut kafka_failing = false;
    let status = Arc::clone(consumer.context().status());
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return Fetched::Stopped,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message.detach(),
            Err(error @ KafkaError::MessageConsumptionFatal(_)) => return Fetched::Fatal(error),
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
        // A message came from a broker: one answers (cheap: an atomic load when known).
        status.set_brokers_reachable(true);
        if std::mem::take(&mut kafka_failing) {
            tracing::info!("Kafka consumer receiving again");
        }
        tracing::trace!(
            partition = message.partition(),
            offset = message.offset(),
            "fetched"
        );
        let Some(to_writer) = writer_of(&to_writers, message.partition()) else {
            return Fetched::Stopped;
        };
        tokio::select! {
            () = shutdown.cancelled() => return Fetched::Stopped,
            sent = to_writer.send(message) => if sent.is_err() { return Fetched::Stopped },
        }
    }
}

/// The writer of `partition` (a partition number is never negative); `None` if there is no
/// writer at all.
fn writer_of<T>(writers: &[T], partition: i32) -> Option<&T> {
    let count = writers.len();
    (count > 0).then(|| &writers[partition.unsigned_abs() as usize % count])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Consumer, GroupMember, consumer_config, writer_of};
    use crate::infra::config::{GroupProtocol, KafkaArgs};
    use crate::ingest::context::IngestContext;

    fn kafka() -> KafkaArgs {
        KafkaArgs {
            kafka_brokers: "127.0.0.1:1".to_owned(),
            kafka_topic: "orders".to_owned(),
            kafka_topic_partitions: 3,
            kafka_topic_replication_factor: None,
            security: Default::default(),
        }
    }

    fn member(protocol: GroupProtocol) -> GroupMember {
        GroupMember {
            group_id: "group".to_owned(),
            instance_id: Some("instance-1".to_owned()),
            protocol,
            session_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_partition_always_goes_to_the_same_writer_and_every_writer_gets_some() {
        let writers = ["a", "b", "c"];
        let chosen: Vec<&str> = (0..6)
            .map(|p| *writer_of(&writers, p).expect("a writer"))
            .collect();
        assert_eq!(chosen, ["a", "b", "c", "a", "b", "c"]);
        assert_eq!(writer_of(&["only"], 17), Some(&"only"));
        assert_eq!(writer_of::<&str>(&[], 0), None);
    }

    /// A `StreamConsumer` is created on a Tokio runtime (it spawns its wake-up task).
    #[tokio::test]
    async fn the_classic_protocol_sets_the_session_and_the_consumer_protocol_leaves_it_to_the_broker()
     {
        let classic = consumer_config(&kafka(), &member(GroupProtocol::Classic));
        assert_eq!(classic.get("group.protocol"), Some("classic"));
        assert_eq!(classic.get("session.timeout.ms"), Some("10000"));
        assert_eq!(classic.get("heartbeat.interval.ms"), Some("3000"));
        assert_eq!(classic.get("group.instance.id"), Some("instance-1"));

        let next = consumer_config(&kafka(), &member(GroupProtocol::Consumer));
        assert_eq!(next.get("group.protocol"), Some("consumer"));
        assert_eq!(next.get("session.timeout.ms"), None);
        assert_eq!(next.get("heartbeat.interval.ms"), None);
        assert_eq!(next.get("group.instance.id"), Some("instance-1"));
        assert_eq!(next.get("enable.auto.offset.store"), Some("false"));

        // librdkafka accepts both (it refuses session.timeout.ms with group.protocol=consumer).
        for config in [classic, next] {
            let created: Result<Consumer, _> =
                config.create_with_context(IngestContext::new(Default::default()));
            assert!(created.is_ok(), "{:?}", created.err());
        }
    }
}
