//! The writing task: takes what was fetched in batches (up to a size, or a short linger),
//! writes each batch in one transaction, retrying with backoff while the database fails
//! (fetching paused meanwhile), then stores the batch's offsets for commit, fills the cache
//! and publishes the rejections to the dead-letter topic.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::decide::{Decided, decide, source, split};
use super::dlq::DeadLetters;
use super::retry::Backoff;
use super::{BatchSettings, Consumer};
use crate::cache::OrderCache;
use crate::events::OrderEvents;
use crate::order::Rejection;
use crate::store::{RejectedMessage, SaveOutcome, Store};

/// The writing side of ingest.
pub struct Writer {
    /// The consumer, to store offsets and to pause fetching.
    consumer: Arc<Consumer>,
    /// Where batches go.
    store: Store,
    /// Where stored orders go next.
    cache: OrderCache,
    /// Where rejections are also published, if anywhere.
    dead_letters: Option<DeadLetters>,
    /// Batch size and linger.
    batches: BatchSettings,
    /// Where each newly stored order is announced (to the live web page).
    pub(super) events: OrderEvents,
}

impl Writer {
    /// A writer of batches to `store`.
    pub fn new(
        consumer: Arc<Consumer>,
        store: Store,
        cache: OrderCache,
        dead_letters: Option<DeadLetters>,
        batches: BatchSettings,
    ) -> Self {
        Self {
            consumer,
            store,
            cache,
            dead_letters,
            batches,
            events: OrderEvents::new(),
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
        let outcomes = loop {
            match self.store.save_batch(&orders, &rejected).await {
                Ok(outcomes) => break outcomes,
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
        super::counters::record_batch(batch.len(), &outcomes, &rejected);
        self.after_commit(batch, &decided, &outcomes, &rejected)
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

    /// Fills the cache with the batch's orders and publishes its rejections.
    async fn after_commit(
        &self,
        batch: &[OwnedMessage],
        decided: &[Decided],
        outcomes: &[SaveOutcome],
        rejected: &[RejectedMessage<'_>],
    ) {
        let orders = batch
            .iter()
            .zip(decided)
            .filter_map(|(message, d)| match d {
                Decided::Order { uid, json } => Some((message, uid, json)),
                Decided::Rejected(_) => None,
            });
        let mut conflicts = Vec::new();
        for ((message, uid, json), outcome) in orders.zip(outcomes) {
            if *outcome == SaveOutcome::Stored {
                self.events.stored(json);
            }
            match outcome {
                SaveOutcome::Stored | SaveOutcome::Duplicate => {
                    self.cache.insert(uid, json.clone()).await;
                }
                SaveOutcome::Conflict => conflicts.push((message, Rejection::conflict(uid))),
            }
        }
        let conflicts = conflicts
            .iter()
            .map(|(message, rejection)| RejectedMessage {
                source: source(message),
                rejection,
            });
        for rejected in rejected.iter().copied().chain(conflicts) {
            tracing::warn!(
                partition = rejected.source.partition,
                offset = rejected.source.offset,
                reason = %rejected.rejection,
                "message rejected"
            );
            if let Some(dead_letters) = &self.dead_letters {
                dead_letters.publish(&rejected);
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
