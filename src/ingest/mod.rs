//! Ingest: Kafka messages -> decode and validate -> store (orders and rejections of a batch in
//! one transaction) -> offsets -> cache. At-least-once: an offset is stored for commit only
//! after its message is safe in PostgreSQL, so a crash redelivers, and the duplicate policy
//! makes redelivery harmless.
//!
//! Two tasks joined by bounded channels: `consumer.rs` fetches and hands each message to the
//! writer of its partition, `write.rs` batches and writes (a few writers side by side, each
//! with its own partitions, so each partition stays in order). When the database is slow or
//! down the channels fill, fetching stops, and memory stays bounded. When PostgreSQL refuses a batch for a reason in its data, `bisect.rs`
//! splits it until the refused messages are found (they are rejected as `store_refused`), and
//! `written.rs` says what became of each message. `trace.rs` makes each batch's span, which
//! continues the producers' traces.

mod bisect;
mod consumer;
mod context;
mod counters;
mod decide;
mod dlq;
mod retry;
mod status;
mod trace;
mod write;
mod written;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use consumer::{Consumer, GroupMember, build_consumer, start_new_topic_at_zero};
use consumer::{Fetched, build_consumer_reporting_to};
pub use context::IngestContext;
pub use dlq::DeadLetters;
pub use status::ConsumerStatus;

use crate::cache::OrderCache;
use crate::events::OrderEvents;
use crate::infra::config::KafkaArgs;
use crate::infra::metrics::names;
use crate::store::Store;

/// How ingest batches its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// The most messages written in one transaction.
    pub max_messages: usize,
    /// How long a batch waits for more messages once it has one.
    pub linger: Duration,
    /// Writers working at once, each on its own partitions (at least 1).
    pub writers: usize,
}

/// Where ingest writes what it reads: built by startup, which hands the same cache and event
/// hub to the HTTP side.
pub struct Sinks {
    /// Where batches are saved.
    pub store: Store,
    /// Where saved orders go next.
    pub cache: OrderCache,
    /// Where each newly stored order is announced (to the live web page).
    pub events: OrderEvents,
    /// Where rejections are also published, if anywhere.
    pub dead_letters: Option<DeadLetters>,
}

/// How long ingest waits before a new consumer replaces one that failed for good. Two
/// fatal errors seen in the fault tests: a static member whose session timed out while the
/// group's coordinator moved is fenced by its own rejoin (`FENCED_INSTANCE_ID`, classic
/// protocol), and with KIP-848 a static member restarted after a crash is refused
/// (`UNRELEASED_INSTANCE_ID`) until its old session expires, each attempt logged.
pub const CONSUMER_RESTART_AFTER: Duration = Duration::from_secs(2);

/// The ingest: a consumer (replaced if it fails for good) and what it writes to.
pub struct Ingest {
    /// Where the consumer connects.
    kafka: KafkaArgs,
    /// Who the consumer is in its group.
    member: GroupMember,
    /// The first consumer, built (and its settings checked) with the ingest.
    first: Option<Consumer>,
    /// The consumers' state, for readiness: every consumer of this ingest reports here.
    status: Arc<ConsumerStatus>,
    /// Where batches go.
    sinks: Sinks,
    /// Batch size and linger.
    batches: BatchSettings,
}

impl Ingest {
    /// An ingest of `kafka`'s orders topic as `member` of its group, writing batches of up to
    /// `batches` to `sinks`. Fails if the consumer cannot be made (a setting librdkafka
    /// refuses, say).
    pub fn new(
        kafka: KafkaArgs,
        member: GroupMember,
        sinks: Sinks,
        batches: BatchSettings,
    ) -> anyhow::Result<Self> {
        let status = Arc::new(ConsumerStatus::default());
        let first = build_consumer_reporting_to(&kafka, &member, status.clone())?;
        Ok(Self {
            kafka,
            member,
            first: Some(first),
            status,
            sinks,
            batches,
        })
    }

    /// The consumer's state the readiness check reads (running, assignment).
    pub fn status(&self) -> Arc<ConsumerStatus> {
        self.status.clone()
    }

    /// Runs until `shutdown` is cancelled: then fetching stops, what was fetched is written,
    /// and the offsets of what was written are committed. A consumer that fails for good is
    /// replaced by a new one after [`CONSUMER_RESTART_AFTER`]; what the failed one fetched
    /// and wrote but could not commit is delivered again, and the duplicate policy makes
    /// that harmless.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!("ingest started");
        let mut next = self.first.take();
        loop {
            let consumer = match next.take() {
                Some(consumer) => consumer,
                None => match build_consumer_reporting_to(
                    &self.kafka,
                    &self.member,
                    self.status.clone(),
                ) {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        tracing::error!("{error:#}; trying again in {CONSUMER_RESTART_AFTER:?}");
                        if wait_or_shutdown(&shutdown).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            let consumer = Arc::new(consumer);
            let fetched = self.session(&consumer, &shutdown).await;
            match fetched {
                Fetched::Stopped => {
                    match consumer.commit_consumer_state(CommitMode::Sync) {
                        Ok(()) => tracing::info!("ingest stopped, offsets committed"),
                        Err(error) => {
                            tracing::info!(%error, "ingest stopped, no new offsets to commit")
                        }
                    }
                    break;
                }
                Fetched::Fatal(error) => {
                    metrics::counter!(names::KAFKA_CONSUMER_RESTARTS).increment(1);
                    tracing::error!(
                        %error,
                        "the Kafka consumer failed for good; a new one joins the group in {CONSUMER_RESTART_AFTER:?}"
                    );
                    self.status.set_assignment(Vec::new());
                    // Closing a consumer may wait for the group coordinator: off the runtime.
                    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
                    if wait_or_shutdown(&shutdown).await {
                        break;
                    }
                }
            }
        }
    }

    /// One consumer's life: fetching and writing until shutdown, or until the consumer fails
    /// for good (then what it had fetched is still written).
    async fn session(&self, consumer: &Arc<Consumer>, shutdown: &CancellationToken) -> Fetched {
        self.status.set_running(true);
        let writer = write::Writer::new(consumer, &self.sinks, self.batches);
        // One batch ahead of each writer, on top of the batch it fills while its write is in
        // flight: twice that held 3,000 more messages (~5 MiB of peak RSS) and ingest kept
        // its ratio to COPY without them (docs/benchmarks.md).
        let capacity = writer.batch_size();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..self.batches.writers.max(1))
            .map(|_| mpsc::channel(capacity))
            .unzip();
        let fetching = tokio::spawn(consumer::fetch(consumer.clone(), senders, shutdown.clone()));
        // The writers share this task: their CPU work is small next to their waits for
        // PostgreSQL, which run side by side, each on its own connection.
        futures::future::join_all(
            receivers
                .into_iter()
                .map(|receiver| writer.run(receiver, shutdown)),
        )
        .await;
        let fetched = fetching.await.unwrap_or_else(|error| {
            tracing::error!(%error, "the fetching task failed");
            Fetched::Stopped
        });
        self.status.set_running(false);
        fetched
    }
}

/// Waits [`CONSUMER_RESTART_AFTER`]; `true` if shutdown came first.
async fn wait_or_shutdown(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(CONSUMER_RESTART_AFTER) => false,
    }
}
