//! The ingest consumer's client context, [`IngestContext`]: librdkafka's callbacks keep the
//! [`ConsumerStatus`] in step with rebalances and with the brokers' reachability, and turn
//! its statistics into `kafka_consumer_lag`. Logging is the shared [`KafkaContext`]'s.

use std::sync::Arc;

use rdkafka::Statistics;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::status::{ConsumerStatus, publish_reachable};
use crate::infra::kafka::KafkaContext;
use crate::infra::metrics::names;

/// How often a consumer's librdkafka statistics (and so `kafka_consumer_lag`) are refreshed,
/// in milliseconds (the value of `statistics.interval.ms`).
pub const STATISTICS_INTERVAL_MS: &str = "5000";

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
        publish_reachable(reachable);
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
    use rdkafka::statistics::{Broker, Partition};

    use super::{any_broker_up, consumer_lag};

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
