//! The `orders` table: what saving an order can do under the duplicate policy (the saving
//! itself is `batch.rs`), and reading orders back as canonical JSON.

use bytes::Bytes;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::Row;

use super::{OrderLookup, Store, StoreError};
use crate::cache::WarmSource;
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
