//! The consumer loop: one message at a time per process, in partition order. A message's
//! offset is stored for the next commit only once it is an order in PostgreSQL or a recorded
//! rejection; store failures are retried with backoff while fetching waits.

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;

use super::dlq::DeadLetters;
use super::retry::Backoff;
use crate::cache::OrderCache;
use crate::config::KafkaArgs;
use crate::kafka::{KafkaContext, client_config};

/// The ingest's consumer.
pub type Consumer = StreamConsumer<KafkaContext>;
use crate::order::{self, RejectKind, Rejection, canonical_json};
use crate::store::{RejectedMessage, SaveOutcome, Store, StoreError};

/// A consumer in `group_id`, subscribed to the orders topic, that commits only the offsets
/// the loop stores.
pub fn build_consumer(kafka: &KafkaArgs, group_id: &str) -> anyhow::Result<Consumer> {
    let consumer: Consumer = client_config(kafka)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Prefetch at most this much per partition: while the database is down the consumer
        // is paused, and memory stays bounded whatever the backlog.
        .set("queued.max.messages.kbytes", "16384")
        .create_with_context(KafkaContext::default())
        .context("cannot create the Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.kafka_topic])
        .with_context(|| format!("cannot subscribe to {}", kafka.kafka_topic))?;
    Ok(consumer)
}

/// What decoding made of a message: an order to store, or a rejection to record.
enum Decision {
    /// A valid order's id and canonical JSON.
    Store {
        /// The order's `order_uid`.
        uid: String,
        /// Its canonical JSON.
        json: bytes::Bytes,
    },
    /// A message that broke the contract.
    Reject(Rejection),
}

/// The ingest loop and what it writes to.
pub struct Ingest {
    /// The subscribed consumer.
    consumer: Consumer,
    /// Where orders and rejections go.
    store: Store,
    /// Where stored orders go next.
    cache: OrderCache,
    /// Where rejections are also published, if anywhere.
    dead_letters: Option<DeadLetters>,
}

impl Ingest {
    /// An ingest loop over `consumer`.
    pub fn new(
        consumer: Consumer,
        store: Store,
        cache: OrderCache,
        dead_letters: Option<DeadLetters>,
    ) -> Self {
        Self {
            consumer,
            store,
            cache,
            dead_letters,
        }
    }

    /// Consumes until `shutdown` is cancelled, then commits what was stored.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("ingest started");
        // Kafka errors are logged when they start and when they end, not one by one.
        let mut kafka_failing = false;
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                received = self.consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message,
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
            if std::mem::take(&mut kafka_failing) {
                tracing::info!("Kafka consumer receiving again");
            }
            if !self.handle(&message, &shutdown).await {
                break;
            }
            if let Err(error) = self.consumer.store_offset_from_message(&message) {
                tracing::warn!(%error, "cannot store the offset for commit");
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => tracing::info!("ingest stopped, offsets committed"),
            Err(error) => tracing::info!(%error, "ingest stopped, nothing left to commit"),
        }
    }

    /// Makes `message` an order or a recorded rejection, retrying store failures until they
    /// pass. Returns `false` if shutdown came first (the message stays uncommitted).
    async fn handle(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> bool {
        let decision = match order::decode(message.payload()) {
            Ok(order) => Decision::Store {
                json: canonical_json(&order),
                uid: order.order_uid,
            },
            Err(rejection) => Decision::Reject(rejection),
        };
        let mut backoff = Backoff::default();
        loop {
            match self.apply(&decision, message).await {
                Ok(()) => {
                    if backoff.failures() > 0 {
                        self.set_fetching(true);
                        tracing::info!(
                            failures = backoff.failures(),
                            "database back, ingest resumed"
                        );
                    }
                    return true;
                }
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

    /// Writes the decision to PostgreSQL, then the cache.
    async fn apply(
        &self,
        decision: &Decision,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), StoreError> {
        match decision {
            Decision::Store { uid, json } => match self.store.save_order(uid, json).await? {
                SaveOutcome::Stored | SaveOutcome::Duplicate => {
                    self.cache.insert(uid, json.clone()).await;
                    tracing::debug!(order_uid = %uid, "order stored");
                    Ok(())
                }
                SaveOutcome::Conflict => {
                    let rejection = Rejection::field(
                        RejectKind::Conflict,
                        "order_uid",
                        format!("{uid} is already stored with different content"),
                    );
                    self.reject(&rejection, message).await
                }
            },
            Decision::Reject(rejection) => self.reject(rejection, message).await,
        }
    }

    /// Records a rejection with the message's origin and bytes.
    async fn reject(
        &self,
        rejection: &Rejection,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), StoreError> {
        let rejected = RejectedMessage {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload(),
            rejection,
        };
        self.store.record_rejection(&rejected).await?;
        if let Some(dead_letters) = &self.dead_letters {
            dead_letters.publish(&rejected);
        }
        tracing::warn!(
            partition = message.partition(),
            offset = message.offset(),
            reason = %rejection,
            "message rejected"
        );
        Ok(())
    }
}
