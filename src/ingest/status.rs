//! The ingest consumer's state that readiness reads: [`ConsumerStatus`], whether ingest
//! runs, what the group assigned, and whether any broker answers. Kept up to date by ingest
//! and by the consumer's callbacks (`context.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::infra::metrics::names;

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
        publish_reachable(reachable);
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
    pub(super) fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        let current = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        current.iter().any(|(t, p)| t == topic && *p == partition)
    }
}

/// Sets `kafka_brokers_reachable`: 1 while a broker answers, 0 while none does.
pub(super) fn publish_reachable(reachable: bool) {
    metrics::gauge!(names::KAFKA_BROKERS_REACHABLE).set(if reachable { 1.0 } else { 0.0 });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::ConsumerStatus;

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
}
