//! The writing task: takes what was fetched in batches (up to a size, or a short linger),
//! decodes the next batch on another thread while the current one is written (one batch
//! deep, writes still one at a time and in order), writes each batch in one transaction,
//! retrying with backoff while the database fails (fetching paused meanwhile). A batch
//! PostgreSQL refuses for a reason in its data is split until the refused messages stand
//! alone (`bisect.rs`), and those are rejected as `store_refused`, so that one poison pill
//! never stalls ingest. Once the whole batch is settled, the writer stores its offsets for
//! commit, counts it, fills the cache and announces the new orders, and logs every rejection
//! (conflicts and refusals included) and publishes it to the dead-letter topic. Each batch is
//! written inside its span (`trace.rs`).

use std::collections::HashMap;

use rdkafka::Message;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::bisect::{Bisection, Piece, Step};
use super::decide::{Decided, decide, origin, split};
use super::retry::Backoff;
use super::written::Written;
use super::{BatchSettings, Consumer, Sinks};
use crate::order::Rejection;
use crate::store::{RejectedMessage, SaveOutcome, SavedBatch, StoreError};

/// A batch of messages as fetched, and what each of them is.
struct Decoded {
    /// The messages, in the order they were fetched.
    messages: Vec<OwnedMessage>,
    /// What each message is, in the same order.
    decided: Vec<Decided>,
}

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
    ///
    /// Pipelined, one batch deep: while batch k is being written, batch k+1 is gathered and
    /// decoded on another thread, so that the service's own work per order (decoding,
    /// validating, canonical JSON) overlaps PostgreSQL's instead of adding to it. Writes stay
    /// one at a time and in order: batch k+1 is written, and its offsets stored, only after
    /// batch k is settled.
    pub async fn run(
        &self,
        mut from_fetch: mpsc::Receiver<OwnedMessage>,
        shutdown: &CancellationToken,
    ) {
        let mut next = self.next_decoded(&mut from_fetch).await;
        while let Some(current) = next {
            let span = super::trace::batch_span(&current.messages);
            let (written, upcoming) = tokio::join!(
                self.write(&current.messages, &current.decided, shutdown)
                    .instrument(span),
                self.next_decoded(&mut from_fetch),
            );
            if !written {
                return;
            }
            next = upcoming;
        }
    }

    /// The next batch, decoded on a blocking thread (CPU work, off the runtime's threads and
    /// in parallel with the write in flight); `None` when the channel is closed and empty.
    async fn next_decoded(&self, from_fetch: &mut mpsc::Receiver<OwnedMessage>) -> Option<Decoded> {
        let mut messages = Vec::with_capacity(self.batch_size());
        if !self.next_batch(from_fetch, &mut messages).await {
            return None;
        }
        let decoding = tokio::task::spawn_blocking(move || {
            let decided = decide(&messages);
            Decoded { messages, decided }
        });
        match decoding.await {
            Ok(decoded) => Some(decoded),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: the runtime is shutting down, and nothing of this batch was written.
            Err(_) => None,
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

    /// Writes one decoded batch, retrying until it is written (around what PostgreSQL
    /// refuses); then offsets, counters, cache and dead letters. `false` if shutdown came
    /// first.
    async fn write(
        &self,
        batch: &[OwnedMessage],
        decided: &[Decided],
        shutdown: &CancellationToken,
    ) -> bool {
        let Some(pieces) = self.save(batch, decided, shutdown).await else {
            return false;
        };
        self.store_offsets(batch);
        let written = Written::new(batch, decided, pieces);
        super::counters::record_batch(&written);
        self.after_commit(&written).await;
        true
    }

    /// Saves the batch: whole, or split where PostgreSQL refuses it, each step retried with
    /// backoff while the database fails (fetching paused meanwhile). What became of each part,
    /// in order; `None` if shutdown came first (then what was committed is delivered again,
    /// and the duplicate policy makes that harmless).
    async fn save(
        &self,
        batch: &[OwnedMessage],
        decided: &[Decided],
        shutdown: &CancellationToken,
    ) -> Option<Vec<Piece<SavedBatch>>> {
        let mut plan = Bisection::new(decided.iter().map(Decided::is_order).collect());
        let mut backoff = Backoff::default();
        while let Some(step) = plan.step() {
            match self.run_step(&step, batch, decided).await {
                Ok(Some(saved)) => plan.saved(saved),
                Ok(None) => plan.recorded(),
                Err(StoreError::Refused(refusal)) => {
                    if plan.refusals() == 0 {
                        tracing::warn!(
                            messages = batch.len(),
                            %refusal,
                            "PostgreSQL refused the batch for a reason in its data; splitting it to find the refused messages"
                        );
                    } else {
                        tracing::debug!(?step, %refusal, "refused");
                    }
                    plan.refused(refusal);
                }
                Err(error) => {
                    let wait = backoff.next_wait();
                    if backoff.failures() == 1 {
                        self.set_fetching(false);
                        tracing::warn!(%error, "cannot store, ingest paused; retrying with backoff");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        if backoff.failures() > 0 {
            self.set_fetching(true);
            tracing::info!(
                failures = backoff.failures(),
                "database back, ingest resumed"
            );
        }
        Some(plan.finish())
    }

    /// Runs one step of the plan, each in its own transaction: saving part of the batch
    /// (`Some` of what it saved), or recording an order PostgreSQL refused as rejected.
    async fn run_step(
        &self,
        step: &Step,
        batch: &[OwnedMessage],
        decided: &[Decided],
    ) -> Result<Option<SavedBatch>, StoreError> {
        match step {
            Step::Save(range) => {
                let (orders, rejected) = split(&batch[range.clone()], &decided[range.clone()]);
                self.sinks
                    .store
                    .save_batch(&orders, &rejected)
                    .await
                    .map(Some)
            }
            Step::Record { index, refusal } => {
                let rejection = Rejection::store_refused(refusal);
                let refused = RejectedMessage {
                    origin: origin(&batch[*index]),
                    rejection: &rejection,
                };
                self.sinks.store.save_batch(&[], &[refused]).await?;
                Ok(None)
            }
        }
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
    /// publishes every rejection (conflicts and refusals included).
    async fn after_commit(&self, written: &Written<'_>) {
        for (uid, json, outcome) in written.orders() {
            if outcome == Some(SaveOutcome::Stored) {
                self.sinks.events.stored(json.as_bytes());
            }
            if matches!(outcome, Some(SaveOutcome::Stored | SaveOutcome::Duplicate)) {
                self.sinks.cache.insert(uid, json.as_bytes()).await;
            }
        }
        for (rejected, unrecorded, headers) in written.rejections() {
            match unrecorded {
                None => tracing::warn!(
                    partition = rejected.origin.partition,
                    offset = rejected.origin.offset,
                    reason = %rejected.rejection,
                    "message rejected"
                ),
                Some(refusal) => tracing::error!(
                    topic = rejected.origin.topic,
                    partition = rejected.origin.partition,
                    offset = rejected.origin.offset,
                    reason = %rejected.rejection,
                    %refusal,
                    "message rejected, and PostgreSQL refused to record the rejection too: it is not in the rejected table, only in this log and on the dead-letter topic"
                ),
            }
            if let Some(dead_letters) = &self.sinks.dead_letters {
                dead_letters.publish(&rejected, headers);
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
