//! The ingest consumer's own state and callbacks: [`ConsumerStatus`] (whether ingest runs,
//! what the group assigned; read by readiness) and [`IngestContext`], the consumer's client
//! context, which keeps that status in step with rebalances and turns librdkafka's statistics
//! into `kafka_consumer_lag`. Logging is the shared [`KafkaContext`]'s.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Statistics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::infra::kafka::KafkaContext;
use crate::infra::metrics::names;

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
    /// Whether no broker answers the consumer now (`brokers_lost_at` says since when).
    brokers_lost: AtomicBool,
    /// Since when no broker has answered, while none does.
    brokers_lost_at: Mutex<Option<Instant>>,
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

    /// The assigned partitions, as `(topic, partition)`.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    /// Records whether any broker answers the consumer: librdkafka's "all brokers down"
    /// error says none does; its statistics, and every message received, say whether one does.
    pub(crate) fn set_brokers_reachable(&self, reachable: bool) {
        if self.brokers_lost.load(Ordering::Acquire) != reachable {
            return;
        }
        let mut lost_at = self
            .brokers_lost_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if reachable {
            *lost_at = None;
            tracing::info!("a Kafka broker answers again");
        } else {
            *lost_at = Some(Instant::now());
            tracing::warn!("no Kafka broker answers; ingest waits for one");
        }
        self.brokers_lost.store(!reachable, Ordering::Release);
        metrics::gauge!(names::KAFKA_BROKERS_REACHABLE).set(if reachable { 1.0 } else { 0.0 });
    }

    /// How long no broker has answered the consumer, if none answers now.
    pub fn brokers_unreachable_for(&self) -> Option<Duration> {
        if !self.brokers_lost.load(Ordering::Acquire) {
            return None;
        }
        let lost_at = self
            .brokers_lost_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lost_at.map(|at| at.elapsed())
    }

    /// Whether `(topic, partition)` is assigned.
    fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        let current = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        current.iter().any(|(t, p)| t == topic && *p == partition)
    }
}

/// The ingest consumer's client context: the shared log throttling, plus the status and lag
/// that only this consumer has.
pub struct IngestContext {
    /// librdkafka's logs and errors, throttled as for every client.
    logs: KafkaContext,
    /// Whether ingest runs and what it is assigned (the readiness check reads it).
    status: Arc<ConsumerStatus>,
}

impl IngestContext {
    /// A context that keeps `status` up to date.
    pub fn new(status: Arc<ConsumerStatus>) -> Self {
        Self {
            logs: KafkaContext::default(),
            status,
        }
    }

    /// The consumer state this context keeps up to date.
    pub fn status(&self) -> &Arc<ConsumerStatus> {
        &self.status
    }
}

impl ClientContext for IngestContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.logs.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.status.set_brokers_reachable(false);
        }
        self.logs.error(error, reason);
    }

    /// A consumer's statistics (every `STATISTICS_INTERVAL_MS`): whether any broker answers,
    /// and the lag of each assigned partition as `kafka_consumer_lag`.
    fn stats(&self, statistics: Statistics) {
        let reachable = any_broker_up(statistics.brokers.values());
        self.status.set_brokers_reachable(reachable);
        metrics::gauge!(names::KAFKA_BROKERS_REACHABLE).set(if reachable { 1.0 } else { 0.0 });
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

/// Whether librdkafka has a working connection to any broker (its own internal broker, which
/// stands for no connection at all, aside).
fn any_broker_up<'a>(brokers: impl IntoIterator<Item = &'a rdkafka::statistics::Broker>) -> bool {
    brokers
        .into_iter()
        .any(|broker| broker.source != "internal" && broker.state == "UP")
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

impl ConsumerContext for IngestContext {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::statistics::{Broker, Partition};

    use super::{ConsumerStatus, any_broker_up, consumer_lag};

    fn broker(source: &str, state: &str) -> Broker {
        Broker {
            source: source.to_owned(),
            state: state.to_owned(),
            ..Broker::default()
        }
    }

    #[test]
    fn a_broker_is_reachable_when_librdkafka_has_one_up() {
        let up = [broker("learned", "DOWN"), broker("configured", "UP")];
        assert!(any_broker_up(&up));
        let down = [
            broker("learned", "DOWN"),
            broker("configured", "CONNECT"),
            broker("internal", "UP"),
        ];
        assert!(
            !any_broker_up(&down),
            "the internal broker is no connection"
        );
        assert!(!any_broker_up(&[]));
    }

    #[test]
    fn losing_every_broker_is_timed_until_one_answers_again() {
        let status = ConsumerStatus::default();
        assert_eq!(status.brokers_unreachable_for(), None, "reachable at first");
        status.set_brokers_reachable(false);
        std::thread::sleep(Duration::from_millis(20));
        status.set_brokers_reachable(false);
        let lost = status.brokers_unreachable_for().expect("unreachable");
        assert!(
            lost >= Duration::from_millis(20),
            "timed from the first loss: {lost:?}"
        );
        status.set_brokers_reachable(true);
        assert_eq!(status.brokers_unreachable_for(), None);
    }

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
