//! Kafka clients: the settings and the context every client shares (librdkafka's errors,
//! logged once per kind every half minute instead of several times a second while a broker
//! is down; for the consumer, its assignment and its lag per partition from librdkafka's
//! statistics), and creating topics that are missing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::Statistics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaArgs;
use crate::metrics::names;

/// How often one kind of librdkafka error or warning is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The context of every Kafka client: logs librdkafka's errors and warnings, each kind at most
/// once per [`LOG_EVERY`], with how many were left out.
#[derive(Default)]
pub struct KafkaContext {
    /// When each kind was last logged, and how many of it were suppressed since.
    last_logged: Mutex<HashMap<String, (Instant, u64)>>,
    /// For a consumer: whether it runs and what it is assigned (the readiness check reads it).
    status: Arc<ConsumerStatus>,
}

/// How often a consumer's librdkafka statistics (and so `kafka_consumer_lag`) are refreshed,
/// in milliseconds (the value of `statistics.interval.ms`).
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// The state of the ingest's consumer that readiness depends on: whether ingest runs, and the
/// partitions the group assigned to this instance. Updated by ingest and by the consumer's
/// rebalance callbacks; read by `GET /health/ready`.
#[derive(Debug, Default)]
pub struct ConsumerStatus {
    /// Whether the ingest loop is running.
    running: AtomicBool,
    /// How many partitions are assigned.
    assigned: AtomicUsize,
    /// The assigned partitions, as `(topic, partition)`.
    partitions: Mutex<Vec<(String, i32)>>,
    /// When the consumer last gave up a non-empty assignment (a rebalance revokes every
    /// partition before it assigns them anew).
    revoked_at: Mutex<Option<Instant>>,
}

impl ConsumerStatus {
    /// Records whether the ingest loop runs.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Whether the ingest loop runs.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// How many partitions the group assigned to this consumer.
    pub fn assigned_partitions(&self) -> usize {
        self.assigned.load(Ordering::Acquire)
    }

    /// Replaces the assignment with `partitions`.
    pub(crate) fn set_assignment(&self, partitions: Vec<(String, i32)>) {
        let mut current = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if partitions.is_empty() && !current.is_empty() {
            *self.revoked_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        self.assigned.store(partitions.len(), Ordering::Release);
        *current = partitions;
    }

    /// Whether the consumer held partitions within the last `grace`: with none assigned now,
    /// a rebalance is under way if it gave some up that recently.
    pub fn held_partitions_within(&self, grace: Duration) -> bool {
        self.assigned_partitions() > 0
            || self
                .revoked_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|at| at.elapsed() <= grace)
    }

    /// Whether `(topic, partition)` is assigned.
    fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        let current = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        current.iter().any(|(t, p)| t == topic && *p == partition)
    }
}

impl KafkaContext {
    /// The consumer state this context keeps up to date.
    pub fn status(&self) -> &Arc<ConsumerStatus> {
        &self.status
    }

    /// `Some(suppressed)` if an event of `kind` should be logged now.
    fn should_log(&self, kind: &str) -> Option<u64> {
        let mut seen = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get_mut(kind) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_EVERY => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                *at = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                seen.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let Some(suppressed) = self.should_log(fac) else {
            return;
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", fac, suppressed, "{message}")
            }
            _ => tracing::debug!(target: "librdkafka", fac, suppressed, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = format!("{:?}", error.rdkafka_error_code());
        if let Some(suppressed) = self.should_log(&kind) {
            tracing::warn!(target: "librdkafka", %error, suppressed, "{reason}");
        }
    }

    /// A consumer's statistics (every [`STATISTICS_INTERVAL_MS`]): the lag of each assigned
    /// partition becomes `kafka_consumer_lag`.
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (&partition, partition_stats) in &stats.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if partition < 0 || !self.status.is_assigned(topic, partition) {
                    continue;
                }
                let Some(lag) = consumer_lag(partition_stats) else {
                    continue;
                };
                metrics::gauge!(
                    names::KAFKA_CONSUMER_LAG,
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}

/// The lag of a partition: librdkafka's own (end minus committed offset) once something is
/// committed; before that, the whole partition (the consumer starts from the earliest offset);
/// `None` while the partition's offsets are unknown.
fn consumer_lag(partition: &rdkafka::statistics::Partition) -> Option<i64> {
    if partition.consumer_lag >= 0 {
        Some(partition.consumer_lag)
    } else if partition.committed_offset < 0 && partition.hi_offset >= 0 && partition.lo_offset >= 0
    {
        Some(partition.hi_offset - partition.lo_offset)
    } else {
        None
    }
}

impl ConsumerContext for KafkaContext {
    /// Keeps [`ConsumerStatus`] in step with the assignment, and zeroes the lag of revoked
    /// partitions (their new owner reports it).
    fn post_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            for element in revoked.elements() {
                metrics::gauge!(
                    names::KAFKA_CONSUMER_LAG,
                    "topic" => element.topic().to_owned(),
                    "partition" => element.partition().to_string()
                )
                .set(0.0);
            }
        }
        match base_consumer.assignment() {
            Ok(assignment) => {
                let partitions: Vec<(String, i32)> = assignment
                    .elements()
                    .iter()
                    .map(|element| (element.topic().to_owned(), element.partition()))
                    .collect();
                tracing::info!(partitions = ?partitions, "consumer assignment changed");
                self.status.set_assignment(partitions);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the consumer's assignment");
                if matches!(rebalance, Rebalance::Revoke(_)) {
                    self.status.set_assignment(Vec::new());
                }
            }
        }
    }
}

/// The client settings every Kafka client of the service starts from.
pub fn client_config(kafka: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.kafka_brokers)
        .set("client.id", "order-service");
    config
}

/// Creates the orders topic with the configured partitions unless it exists already; `true`
/// if it was created now.
pub async fn ensure_topic(kafka: &KafkaArgs) -> anyhow::Result<bool> {
    ensure_named_topic(kafka, &kafka.kafka_topic, kafka.kafka_topic_partitions).await
}

/// Creates `name` with `partitions` partitions, replicated as configured (by default as the
/// broker's default), unless it exists already; `true` if it was created now.
pub async fn ensure_named_topic(
    kafka: &KafkaArgs,
    name: &str,
    partitions: i32,
) -> anyhow::Result<bool> {
    let admin: AdminClient<KafkaContext> = client_config(kafka)
        .create_with_context(KafkaContext::default())
        .context("cannot create a Kafka admin client")?;
    // -1 asks for the broker's `default.replication.factor` (CreateTopics v4+, Kafka 2.4+).
    let replication = kafka.kafka_topic_replication_factor.unwrap_or(-1);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", kafka.kafka_brokers))?;
    let mut created = false;
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions, replication = ?kafka.kafka_topic_replication_factor, "topic created");
                created = true;
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use rdkafka::statistics::Partition;

    use super::consumer_lag;

    #[test]
    fn lag_is_librdkafkas_once_committed_else_the_whole_partition() {
        let committed = Partition {
            consumer_lag: 7,
            committed_offset: 3,
            hi_offset: 10,
            ..Partition::default()
        };
        assert_eq!(consumer_lag(&committed), Some(7));
        let fresh = Partition {
            consumer_lag: -1,
            committed_offset: -1001,
            lo_offset: 2,
            hi_offset: 10,
            ..Partition::default()
        };
        assert_eq!(consumer_lag(&fresh), Some(8));
        let unknown = Partition {
            consumer_lag: -1,
            committed_offset: -1001,
            lo_offset: -1,
            hi_offset: -1,
            ..Partition::default()
        };
        assert_eq!(consumer_lag(&unknown), None);
    }
}
