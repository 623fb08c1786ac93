//! The `orders` table: what saving an order can do under the duplicate policy (the saving
//! itself is `batch.rs`), and reading orders back as canonical JSON.

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{OrderLookup, Store, StoreError};
use crate::metrics::QueryTimer;
use crate::order::{Order, canonical_json};

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
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc::text FROM orders WHERE order_uid = $1")
                .bind(uid)
                .fetch_optional(&self.pool)
                .await?;
        doc.map(|doc| canonical_from_stored(uid, &doc)).transpose()
    }

    /// The `limit` most recently stored orders, newest first, as `(order_uid, canonical JSON)`.
    pub async fn recent_orders(&self, limit: i64) -> Result<Vec<(String, Bytes)>, StoreError> {
        let _timer = QueryTimer::start("recent_orders");
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT order_uid, doc::text FROM orders ORDER BY seq DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(uid, doc)| canonical_from_stored(&uid, &doc).map(|json| (uid, json)))
            .collect()
    }
}

impl OrderLookup for Store {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        let uid = uid.to_owned();
        Box::pin(async move { self.order_json(&uid).await })
    }
}

/// JSONB keeps its own key order; the API's bytes come from the typed order.
fn canonical_from_stored(uid: &str, doc: &str) -> Result<Bytes, StoreError> {
    let order: Order = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        uid: uid.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(canonical_json(&order))
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
mod summary_tests {
    use super::OrderSummary;

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
}
