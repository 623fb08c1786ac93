//! Ingest: Kafka messages -> decode and validate -> store (orders and rejections of a batch in
//! one transaction) -> offsets -> cache. At-least-once: an offset is stored for commit only
//! after its message is safe in PostgreSQL, so a crash redelivers, and the duplicate policy
//! makes redelivery harmless.
//!
//! Two tasks joined by a bounded channel: `consumer.rs` fetches, `write.rs` batches and
//! writes. When the database is slow or down the channel fills, fetching stops, and memory
//! stays bounded.

mod consumer;
mod counters;
mod decide;
mod dlq;
mod retry;
mod status;
mod write;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use consumer::{Consumer, GroupMember, build_consumer, start_new_topic_at_zero};
pub use dlq::DeadLetters;
pub use status::{ConsumerStatus, IngestContext};

use crate::cache::OrderCache;
use crate::events::OrderEvents;
use crate::store::Store;

/// How ingest batches its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// The most messages written in one transaction.
    pub max_messages: usize,
    /// How long a batch waits for more messages once it has one.
    pub linger: Duration,
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

/// The ingest: a consumer and what it writes to.
pub struct Ingest {
    /// The subscribed consumer, shared by the fetching and the writing task.
    consumer: Arc<Consumer>,
    /// The writing side.
    writer: write::Writer,
}

impl Ingest {
    /// An ingest over `consumer`, writing batches of up to `batches` to `sinks`.
    pub fn new(consumer: Consumer, sinks: Sinks, batches: BatchSettings) -> Self {
        let consumer = Arc::new(consumer);
        let writer = write::Writer::new(consumer.clone(), sinks, batches);
        Self { consumer, writer }
    }

    /// The consumer's state the readiness check reads (running, assignment).
    pub fn status(&self) -> Arc<ConsumerStatus> {
        self.consumer.context().status().clone()
    }

    /// Runs until `shutdown` is cancelled: then fetching stops, what was fetched is written,
    /// and the offsets of what was written are committed.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("ingest started");
        let status = self.consumer.context().status().clone();
        status.set_running(true);
        let capacity = 2 * self.writer.batch_size();
        let (sender, receiver) = mpsc::channel(capacity);
        let fetching = tokio::spawn(consumer::fetch(
            self.consumer.clone(),
            sender,
            shutdown.clone(),
        ));
        self.writer.run(receiver, &shutdown).await;
        if let Err(error) = fetching.await {
            tracing::error!(%error, "the fetching task failed");
        }
        status.set_running(false);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("ingest stopped, offsets committed"),
            Err(error) => tracing::info!(%error, "ingest stopped, no new offsets to commit"),
        }
    }
}
