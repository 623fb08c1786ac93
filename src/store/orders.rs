//! The `orders` table, read: one order or many by id, the most recent ones (for the
//! warm-up) and the most recent ones as summaries (for the page), always as canonical JSON:
//! the `body` ingest stored beside the document, or, for an order stored before there was a
//! `body`, re-encoded from the document. (Saving is `save.rs`.)

use std::collections::HashMap;

use bytes::Bytes;
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::PgRow;

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
        let row = sqlx::query(concat!(
            "SELECT ",
            stored_json_columns!(),
            " FROM orders WHERE order_uid = $1"
        ))
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| stored_json(uid, &row)).transpose()
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
        let mut rows = sqlx::query(concat!(
            "SELECT ",
            stored_json_columns!(),
            ", order_uid FROM orders ORDER BY seq DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch(&self.pool);
        let mut orders = Vec::new();
        let mut bytes = 0u64;
        while bytes < max_bytes {
            let Some(row) = rows.try_next().await? else {
                break;
            };
            let uid: String = row.try_get(2)?;
            let json = stored_json(&uid, &row)?;
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            stored_json_columns!(),
            ", order_uid FROM orders WHERE order_uid = ANY($1)"
        ))
        .bind(uids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let uid: String = row.try_get(2)?;
                let json = stored_json(&uid, row).map_err(|_| ());
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

/// The two columns [`stored_json`] reads, first in a query's select list: the stored `body`,
/// and the document as text only where there is no `body` (PostgreSQL converts a JSONB to
/// text only when asked, at ~27 us a document).
macro_rules! stored_json_columns {
    () => {
        "body, CASE WHEN body IS NULL THEN doc::text END"
    };
}
use stored_json_columns;

/// An order's canonical JSON from a row whose first two columns are [`stored_json_columns`]:
/// its `body`, copied out of the row's buffer; or, for an order stored before there was a
/// `body`, re-encoded from its document.
fn stored_json(uid: &str, row: &PgRow) -> Result<Bytes, StoreError> {
    if let Some(body) = row.try_get::<Option<&str>, _>(0)? {
        return Ok(Bytes::copy_from_slice(body.as_bytes()));
    }
    let doc: Option<&str> = row.try_get(1)?;
    let doc = doc.ok_or_else(|| StoreError::Corrupt {
        uid: uid.to_owned(),
        reason: "neither a body nor a document".to_owned(),
    })?;
    canonical_from_stored(uid, doc)
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
