//! The `orders` table: what saving an order can do under the duplicate policy (the saving
//! itself is `batch.rs`), and reading orders back as canonical JSON, one by one or, for the
//! HTTP API's misses, the ones that arrive together in one query ([`BatchedLookup`]).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::Row;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{OrderLookup, Store, StoreError};
use crate::cache::WarmSource;
use crate::metrics::QueryTimer;
use crate::order::Order;

/// What saving an order did, under the contract's duplicate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new order: it is stored now.
    Stored,
    /// The same `order_uid` with the same content (compared as JSON): a redelivery, nothing
    /// changed.
    Duplicate,
    /// The same `order_uid` with different content: the stored order stays as it was and the
    /// message must be rejected as `conflict`.
    Conflict,
}

impl Store {
    /// One order's canonical JSON, if it is stored.
    pub async fn order_json(&self, uid: &str) -> Result<Option<Bytes>, StoreError> {
        let _timer = QueryTimer::start("order_by_id");
        let row = sqlx::query("SELECT doc::text FROM orders WHERE order_uid = $1")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await?;
        // The text is read in place from the row's buffer: no copy of it is made.
        row.map(|row| canonical_from_stored(uid, row.try_get::<&str, _>(0)?))
            .transpose()
    }

    /// The most recently stored orders, newest first, as `(order_uid, canonical JSON)`: at most
    /// `limit`, and no more once their JSON adds up to `max_bytes`. Rows are read as they
    /// arrive, so that memory follows what is kept, not what the table holds.
    pub async fn recent_orders(
        &self,
        limit: i64,
        max_bytes: u64,
    ) -> Result<Vec<(String, Bytes)>, StoreError> {
        let _timer = QueryTimer::start("recent_orders");
        let mut rows =
            sqlx::query("SELECT order_uid, doc::text FROM orders ORDER BY seq DESC LIMIT $1")
                .bind(limit)
                .fetch(&self.pool);
        let mut orders = Vec::new();
        let mut bytes = 0u64;
        while bytes < max_bytes {
            let Some(row) = rows.try_next().await? else {
                break;
            };
            let uid: String = row.try_get(0)?;
            let json = canonical_from_stored(&uid, row.try_get::<&str, _>(1)?)?;
            bytes += json.len() as u64;
            orders.push((uid, json));
        }
        Ok(orders)
    }
}

impl OrderLookup for Store {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        let uid = uid.to_owned();
        Box::pin(async move { self.order_json(&uid).await })
    }
}

/// The most ids one batched query looks up.
const MAX_BATCH: usize = 256;

/// How many batched queries run at once (the pool has more connections, for ingest).
const PARALLEL_BATCHES: usize = 4;

/// How many lookups may wait for a batch before `find` waits to queue.
const QUEUE: usize = 4096;

/// What a lookup gets from its batch: the order's JSON or `None`; the batch's failure, shared;
/// or `Err(None)` for a stored order that does not decode (its request reads it again on its
/// own, to report it with its own error).
type BatchAnswer = Result<Option<Bytes>, Option<Arc<StoreError>>>;

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
                    Ok(Err(Some(shared))) => return Err(StoreError::Shared(shared)),
                    // Not decodable, or the batching task is gone: ask on our own.
                    Ok(Err(None)) | Err(_) => {}
                }
            }
            self.store.order_json(&uid).await
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
    let found = store.orders_json(&ids).await.map_err(|error| {
        tracing::warn!(%error, lookups = ids.len(), "batched order read failed");
        Arc::new(error)
    });
    for (uid, answer) in batch {
        let result = match &found {
            Ok(found) => match found.get(uid.as_str()) {
                Some(Ok(json)) => Ok(Some(json.clone())),
                // A stored order that does not decode: its request reports it on its own.
                Some(Err(())) => Err(None),
                None => Ok(None),
            },
            Err(shared) => Err(Some(shared.clone())),
        };
        // The request may have gone (timed out, client left): nothing to do.
        let _ = answer.send(result);
    }
}

impl Store {
    /// The canonical JSON of each of `uids` that is stored, in one query (`Err(())` for a
    /// stored document that does not decode).
    pub async fn orders_json(
        &self,
        uids: &[&str],
    ) -> Result<HashMap<String, Result<Bytes, ()>>, StoreError> {
        let _timer = QueryTimer::start("orders_by_ids");
        let rows = sqlx::query("SELECT order_uid, doc::text FROM orders WHERE order_uid = ANY($1)")
            .bind(uids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let uid: String = row.try_get(0)?;
                let json = canonical_from_stored(&uid, row.try_get::<&str, _>(1)?).map_err(|_| ());
                Ok((uid, json))
            })
            .collect()
    }
}

impl WarmSource for Store {
    fn recent_orders(
        &self,
        limit: i64,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>> {
        Box::pin(Store::recent_orders(self, limit, max_bytes))
    }
}

/// The API's bytes come from the typed order: JSONB keeps its keys in its own order (shortest
/// first), not the contract's, so the stored text cannot be served as it is. Decoding also
/// checks that the stored document is still an order. The JSON is written into a buffer of
/// the stored text's size, which is always enough (JSONB's text adds a space after each
/// `:` and `,`), so that it is not reallocated while it grows.
fn canonical_from_stored(uid: &str, doc: &str) -> Result<Bytes, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        uid: uid.to_owned(),
        reason: e.to_string(),
    };
    let order: Order = serde_json::from_str(doc).map_err(corrupt)?;
    let mut json = Vec::with_capacity(doc.len());
    serde_json::to_writer(&mut json, &order).map_err(corrupt)?;
    Ok(Bytes::from(json))
}

/// One order in a list: what a person needs to recognise it, not the whole document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderSummary {
    /// The order's id.
    pub order_uid: String,
    /// Tracking number of the shipment.
    pub track_number: String,
    /// The customer's id.
    pub customer_id: String,
    /// Who receives it (`delivery.name`).
    pub delivery_name: String,
    /// Where it goes (`delivery.city`).
    pub delivery_city: String,
    /// `payment.amount`, a whole number in the currency's unit.
    pub amount: i64,
    /// `payment.currency`, three upper-case letters.
    pub currency: String,
    /// How many items it has.
    pub item_count: i64,
    /// `date_created` as the producer gave it (RFC 3339).
    pub date_created: String,
    /// When the service stored it, RFC 3339 in UTC with milliseconds.
    pub stored_at: String,
}

/// The fields of an order's JSON that a summary takes; the others are skipped unread.
#[derive(serde::Deserialize)]
struct SummarySource {
    /// `order_uid`.
    order_uid: String,
    /// `track_number`.
    track_number: String,
    /// `customer_id`.
    customer_id: String,
    /// `delivery` (name and city).
    delivery: SummaryDelivery,
    /// `payment` (amount and currency).
    payment: SummaryPayment,
    /// `items`, only counted.
    items: Vec<serde::de::IgnoredAny>,
    /// `date_created`.
    date_created: String,
}

/// The fields of `delivery` a summary takes.
#[derive(serde::Deserialize)]
struct SummaryDelivery {
    /// `delivery.name`.
    name: String,
    /// `delivery.city`.
    city: String,
}

/// The fields of `payment` a summary takes.
#[derive(serde::Deserialize)]
struct SummaryPayment {
    /// `payment.amount`.
    amount: i64,
    /// `payment.currency`.
    currency: String,
}

impl OrderSummary {
    /// The summary of an order from its canonical JSON, stored at `stored_at`; `None` if the
    /// JSON is not an order.
    pub fn from_json(json: &[u8], stored_at: String) -> Option<Self> {
        let source: SummarySource = serde_json::from_slice(json).ok()?;
        Some(Self {
            order_uid: source.order_uid,
            track_number: source.track_number,
            customer_id: source.customer_id,
            delivery_name: source.delivery.name,
            delivery_city: source.delivery.city,
            amount: source.payment.amount,
            currency: source.payment.currency,
            item_count: i64::try_from(source.items.len()).unwrap_or(i64::MAX),
            date_created: source.date_created,
            stored_at,
        })
    }
}

/// `now()` as [`OrderSummary::stored_at`] writes it.
pub fn stored_at_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The short lists the web page shows: recent orders and recent rejections, as a trait so
/// that the handlers can be tested with a fake.
pub trait RecentLists: Send + Sync + 'static {
    /// The `limit` most recently stored orders, newest first.
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>>;
    /// The `limit` most recent rejections, newest first.
    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<super::rejected::RejectedSummary>, StoreError>>;
}

impl Store {
    /// The `limit` most recently stored orders, newest first, as summaries read from the JSONB
    /// document (no whole document leaves the database).
    pub async fn order_summaries(&self, limit: i64) -> Result<Vec<OrderSummary>, StoreError> {
        let _timer = QueryTimer::start("order_summaries");
        Ok(sqlx::query_as(
            r#"SELECT order_uid,
                      doc->>'track_number' AS track_number,
                      doc->>'customer_id' AS customer_id,
                      doc#>>'{delivery,name}' AS delivery_name,
                      doc#>>'{delivery,city}' AS delivery_city,
                      (doc#>>'{payment,amount}')::int8 AS amount,
                      doc#>>'{payment,currency}' AS currency,
                      jsonb_array_length(doc->'items')::int8 AS item_count,
                      doc->>'date_created' AS date_created,
                      to_char(stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                          AS stored_at
               FROM orders ORDER BY seq DESC LIMIT $1"#,
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl RecentLists for Store {
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>> {
        Box::pin(self.order_summaries(limit))
    }

    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<super::rejected::RejectedSummary>, StoreError>> {
        Box::pin(self.rejected_summaries(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchedLookup, OrderLookup, OrderSummary, Store, StoreError};

    const SAMPLE: &str = include_str!("../../tests/fixtures/sample-order.json");

    #[test]
    fn a_summary_takes_its_fields_from_the_order() {
        let summary = OrderSummary::from_json(SAMPLE.as_bytes(), "t".to_owned()).expect("an order");
        assert_eq!(summary.order_uid, "b563feb7b2b84b6test");
        assert_eq!(summary.track_number, "WBILMTESTTRACK");
        assert_eq!(summary.customer_id, "test");
        assert_eq!(summary.delivery_name, "Test Testov");
        assert_eq!(summary.delivery_city, "Kiryat Mozkin");
        assert_eq!((summary.amount, summary.currency.as_str()), (1817, "USD"));
        assert_eq!(summary.item_count, 1);
        assert_eq!(summary.date_created, "2021-11-26T06:22:19Z");
        assert_eq!(summary.stored_at, "t");
    }

    #[test]
    fn a_summary_of_escaped_strings_is_unescaped() {
        let json = SAMPLE.replace("Test Testov", r#"<img src=x> \"quoted\""#);
        let summary = OrderSummary::from_json(json.as_bytes(), "t".to_owned()).expect("an order");
        assert_eq!(summary.delivery_name, r#"<img src=x> "quoted""#);
    }

    #[test]
    fn json_that_is_not_an_order_has_no_summary() {
        assert_eq!(
            OrderSummary::from_json(b"{\"order_uid\":1}", "t".to_owned()),
            None
        );
    }

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
        for result in futures::future::join_all(lookups).await {
            match result {
                Err(StoreError::Shared(shared)) => {
                    assert!(matches!(*shared, StoreError::Unavailable(_)), "{shared}");
                }
                other => panic!("expected the batch's shared error, got {other:?}"),
            }
        }
    }
}
