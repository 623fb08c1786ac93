//! The writing task: takes what was fetched in batches (up to a size, or a short linger),
//! writes each batch in one transaction, retrying with backoff while the database fails
//! (fetching paused meanwhile), then stores the batch's offsets for commit, counts the batch,
//! fills the cache and announces the new orders, and logs every rejection (conflicts
//! included) and publishes it to the dead-letter topic.

use std::collections::HashMap;

use rdkafka::Message;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::decide::{Decided, decide, split};
use super::retry::Backoff;
use super::{BatchSettings, Consumer, Sinks};
use crate::store::{RejectedMessage, SaveOutcome};

/// The writing side of ingest, for one consumer (a new consumer gets a new writer).
pub struct Writer<'a> {
    /// The consumer, to store offsets and to pause fetching.
    consumer: &'a Consumer,
    /// Where batches, orders, events and rejections go.
    sinks: &'a Sinks,
    /// Batch size and linger.
    batches: BatchSettings,
}

impl<'a> Writer<'a> {
    /// A writer of batches to `sinks`, storing the offsets of what it wrote in `consumer`.
    pub fn new(consumer: &'a Consumer, sinks: &'a Sinks, batches: BatchSettings) -> Self {
        Self {
            consumer,
            sinks,
            batches,
        }
    }

    /// The most messages in one batch.
    pub fn batch_size(&self) -> usize {
        self.batches.max_messages.max(1)
    }

    /// Writes batches until the fetching side is gone and everything it sent is written, or
    /// until shutdown interrupts a retry (what was not written stays uncommitted).
    pub async fn run(
        &self,
        mut from_fetch: mpsc::Receiver<OwnedMessage>,
        shutdown: &CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(self.batch_size());
        while self.next_batch(&mut from_fetch, &mut batch).await {
            if !self.write(&batch, shutdown).await {
                return;
            }
            batch.clear();
        }
    }

    /// Fills `batch` with at least one message, then more until it is full or the linger is
    /// over. `false` when the channel is closed and empty.
    async fn next_batch(
        &self,
        from_fetch: &mut mpsc::Receiver<OwnedMessage>,
        batch: &mut Vec<OwnedMessage>,
    ) -> bool {
        let max = self.batch_size();
        if from_fetch.recv_many(batch, max).await == 0 {
            return false;
        }
        let deadline = Instant::now() + self.batches.linger;
        while batch.len() < max {
            tokio::select! {
                received = from_fetch.recv_many(batch, max - batch.len()) => {
                    if received == 0 { break }
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        true
    }

    /// Writes one batch, retrying until it is written; then offsets, cache and dead letters.
    /// `false` if shutdown came first.
    async fn write(&self, batch: &[OwnedMessage], shutdown: &CancellationToken) -> bool {
        let decided = decide(batch);
        let (orders, rejected) = split(batch, &decided);
        let mut backoff = Backoff::default();
        let saved = loop {
            match self.sinks.store.save_batch(&orders, &rejected).await {
                Ok(saved) => break saved,
                Err(error) => {
                    let wait = backoff.next_wait();
                    if backoff.failures() == 1 {
                        self.set_fetching(false);
                        tracing::warn!(%error, "cannot store, ingest paused; retrying with backoff");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return false,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        };
        if backoff.failures() > 0 {
            self.set_fetching(true);
            tracing::info!(
                failures = backoff.failures(),
                "database back, ingest resumed"
            );
        }
        self.store_offsets(batch);
        let all_rejected = saved.all_rejected(&orders, &rejected);
        super::counters::record_batch(batch.len(), &saved.outcomes, &all_rejected);
        self.after_commit(&decided, &saved.outcomes, &all_rejected)
            .await;
        true
    }

    /// Stores, for commit, the offset after the last message of each partition in the batch.
    fn store_offsets(&self, batch: &[OwnedMessage]) {
        let mut last: HashMap<(&str, i32), i64> = HashMap::new();
        for message in batch {
            let offset = last
                .entry((message.topic(), message.partition()))
                .or_default();
            *offset = (*offset).max(message.offset());
        }
        for ((topic, partition), offset) in last {
            // Fails for a partition revoked meanwhile: its new owner redelivers from the last
            // commit, and the duplicate policy makes that harmless.
            if let Err(error) = self.consumer.store_offset(topic, partition, offset) {
                tracing::debug!(%error, topic, partition, offset, "offset not stored");
            }
        }
    }

    /// Fills the cache with the batch's orders, announces the new ones, and logs and
    /// publishes every rejection (conflicts included).
    async fn after_commit(
        &self,
        decided: &[Decided],
        outcomes: &[SaveOutcome],
        rejected: &[RejectedMessage<'_>],
    ) {
        let orders = decided.iter().filter_map(|d| match d {
            Decided::Order { uid, json } => Some((uid, json)),
            Decided::Rejected(_) => None,
        });
        for ((uid, json), outcome) in orders.zip(outcomes) {
            if *outcome == SaveOutcome::Stored {
                self.sinks.events.stored(json.as_bytes());
            }
            if *outcome != SaveOutcome::Conflict {
                self.sinks.cache.insert(uid, json.as_bytes()).await;
            }
        }
        for rejected in rejected {
            tracing::warn!(
                partition = rejected.origin.partition,
                offset = rejected.origin.offset,
                reason = %rejected.rejection,
                "message rejected"
            );
            if let Some(dead_letters) = &self.sinks.dead_letters {
                dead_letters.publish(rejected);
            }
        }
    }

    /// Pauses or resumes fetching for every assigned partition.
    fn set_fetching(&self, on: bool) {
        let result = self.consumer.assignment().and_then(|assigned| {
            if on {
                self.consumer.resume(&assigned)
            } else {
                self.consumer.pause(&assigned)
            }
        });
        if let Err(error) = result {
            tracing::warn!(%error, on, "cannot pause or resume fetching");
        }
    }
}
