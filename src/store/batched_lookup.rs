//! Looking orders up by id for the HTTP API's misses: the lookups that arrive while others
//! run are gathered into one `WHERE order_uid = ANY($1)` query, so that under many concurrent
//! misses one round trip to PostgreSQL serves many requests.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{OrderLookup, Store, StoreError};

/// The most ids one batched query looks up.
const MAX_BATCH: usize = 256;

/// How many batched queries run at once (the pool has more connections, for ingest). Few,
/// so that under load each query gathers many ids: PostgreSQL's cost per query dwarfs its
/// cost per row. `make bench-http`'s misses with 64 connections (2026-12-03): 4 queries at
/// once made batches of ~6 ids and cost PostgreSQL 53-57 us of CPU per miss; 2 made it 33-42
/// us, 1 made it 24-29 us, at the same or better throughput. Two, not one, so that one slow
/// query does not hold every miss.
const PARALLEL_BATCHES: usize = 2;

/// How many lookups may wait for a batch before `find` waits to queue.
const QUEUE: usize = 4096;

/// What a lookup gets from its batch: the order's JSON or `None`; the batch's failure (a
/// clone: one driver error shared by every lookup of the batch);
/// or `Err(None)` for a stored order that does not decode (its request reads it again on its
/// own, to report it with its own error).
type BatchAnswer = Result<Option<Bytes>, Option<StoreError>>;

/// A lookup waiting for its batch: the id, and where its answer goes.
type Waiting = (String, oneshot::Sender<BatchAnswer>);

/// Looks orders up by id, the lookups that arrive while others run gathered into one
/// `WHERE order_uid = ANY($1)` query: under many concurrent misses, one round trip to
/// PostgreSQL serves many requests. A batch that fails fails every lookup in it with the same
/// error (logged once), so that an outage does not double the queries.
#[derive(Clone)]
pub struct BatchedLookup {
    /// Where lookups queue for the batching task.
    queue: mpsc::Sender<Waiting>,
    /// For lookups on their own.
    store: Store,
}

impl BatchedLookup {
    /// Starts the batching task on the current runtime; it ends when the last clone is gone.
    pub fn spawn(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run_batches(store.clone(), waiting));
        Self { queue, store }
    }
}

impl OrderLookup for BatchedLookup {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        let uid = uid.to_owned();
        Box::pin(async move {
            let (answer, answered) = oneshot::channel();
            if self.queue.send((uid.clone(), answer)).await.is_ok() {
                match answered.await {
                    Ok(Ok(found)) => return Ok(found),
                    Ok(Err(Some(error))) => return Err(error),
                    // Not decodable, or the batching task is gone: ask on our own.
                    Ok(Err(None)) | Err(_) => {}
                }
            }
            OrderLookup::find(&self.store, &uid).await
        })
    }
}

/// Takes what is queued (up to [`MAX_BATCH`]) whenever a query slot is free, and runs it.
async fn run_batches(store: Store, mut waiting: mpsc::Receiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(PARALLEL_BATCHES));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Whatever arrived while waiting for the slot joins this batch.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let _slot = slot;
            answer_batch(&store, batch).await;
        });
    }
}

/// Looks a batch up in one query and answers each of its lookups.
async fn answer_batch(store: &Store, batch: Vec<Waiting>) {
    let ids: Vec<&str> = batch.iter().map(|(uid, _)| uid.as_str()).collect();
    let found = store.orders_json(&ids).await.inspect_err(|error| {
        tracing::warn!(%error, lookups = ids.len(), "batched order read failed");
    });
    for (uid, answer) in batch {
        let result = match &found {
            Ok(found) => match found.get(uid.as_str()) {
                Some(Ok(json)) => Ok(Some(json.clone())),
                // A stored order that does not decode: its request reports it on its own.
                Some(Err(())) => Err(None),
                None => Ok(None),
            },
            Err(error) => Err(Some(error.clone())),
        };
        // The request may have gone (timed out, client left): nothing to do.
        let _ = answer.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchedLookup, OrderLookup, Store, StoreError};

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_lookups_with_the_shared_error() {
        // Nothing listens on port 1: every connection attempt fails at once.
        let store = Store::connect_lazy(
            "postgres://postgres@127.0.0.1:1/none",
            std::time::Duration::from_millis(300),
        )
        .expect("a lazy pool");
        let lookup = BatchedLookup::spawn(store);
        let lookups = (0..8).map(|i| {
            let lookup = lookup.clone();
            async move { lookup.find(&format!("order-{i}")).await }
        });
        // The eight lookups queue before the batching task runs (one thread), so they make one
        // batch, and each gets that batch's one failure rather than a read of its own.
        let errors: Vec<_> = futures::future::join_all(lookups)
            .await
            .into_iter()
            .map(|result| match result {
                Err(StoreError::Unavailable(error)) => error,
                other => panic!("expected the batch's unavailable error, got {other:?}"),
            })
            .collect();
        assert!(
            errors.iter().all(|e| std::sync::Arc::ptr_eq(e, &errors[0])),
            "every lookup got the same, shared failure"
        );
    }
}
