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
