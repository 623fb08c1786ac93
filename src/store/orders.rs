//! The `orders` table, read: one order or many by id, the most recent ones (for the
//! warm-up) and the most recent ones as summaries (for the page), always as canonical JSON
//! re-encoded from the stored document. (Saving is `save.rs`.)

use std::collections::HashMap;

use bytes::Bytes;
use futures::TryStreamExt;
use sqlx::Row;

use super::{Store, StoreError};
use crate::infra::metrics::QueryTimer;
use crate::order::{Order, OrderSummary};

impl Store {
    /// One order's canonical JSON, if it is stored.
    #[tracing::instrument(
        level = "debug",
        name = "order_by_id",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "orders")
    )]
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
    #[tracing::instrument(
        level = "debug",
        name = "recent_orders",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "orders", db.limit = limit)
    )]
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

    /// The canonical JSON of each of `uids` that is stored, in one query (`Err(())` for a
    /// stored document that does not decode).
    #[tracing::instrument(
        level = "debug",
        name = "orders_by_ids",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "orders", db.ids = uids.len())
    )]
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

    /// The `limit` most recently stored orders, newest first, as summaries read from the JSONB
    /// document (no whole document leaves the database).
    #[tracing::instrument(
        level = "debug",
        name = "order_summaries",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "orders", db.limit = limit)
    )]
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
