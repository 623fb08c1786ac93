//! The `rejected` table: every message that did not become an order, with where it came from,
//! its raw bytes and the reason.

use super::{Store, StoreError};
use crate::order::Rejection;

/// A message that broke the contract, with its origin in the topic.
#[derive(Debug, Clone)]
pub struct RejectedMessage<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if it had one.
    pub key: Option<&'a [u8]>,
    /// Its raw value (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Why it was rejected.
    pub rejection: &'a Rejection,
}

/// A recorded rejection, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RejectedRow {
    /// Row id.
    pub id: i64,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Raw value.
    pub payload: Option<Vec<u8>>,
    /// Stable rule name (see [`crate::order::RejectKind::code`]).
    pub reason_code: String,
    /// The full reason.
    pub reason: String,
}

impl Store {
    /// Records a rejection; recording the same topic/partition/offset again does nothing.
    pub async fn record_rejection(&self, msg: &RejectedMessage<'_>) -> Result<(), StoreError> {
        sqlx::query(
            r#"INSERT INTO rejected (topic, "partition", "offset", key, payload, reason_code, reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (topic, "partition", "offset") DO NOTHING"#,
        )
        .bind(msg.topic)
        .bind(msg.partition)
        .bind(msg.offset)
        .bind(msg.key)
        .bind(msg.payload)
        .bind(msg.rejection.kind.code())
        // A field name from the message may hold U+0000, which PostgreSQL text cannot.
        .bind(msg.rejection.to_string().replace('\0', "\\u0000"))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The `limit` most recent rejections, newest first.
    pub async fn recent_rejections(&self, limit: i64) -> Result<Vec<RejectedRow>, StoreError> {
        Ok(sqlx::query_as(
            r#"SELECT id, topic, "partition" AS partition, "offset" AS offset, payload,
                      reason_code, reason
               FROM rejected ORDER BY id DESC LIMIT $1"#,
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

/// A rejection waiting to be replayed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingReplay {
    /// Row id.
    pub id: i64,
    /// Raw value (`None` for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// The reason it was rejected with.
    pub reason: String,
}

impl Store {
    /// Rejections not replayed yet: all of them, or the one with `id`.
    pub async fn pending_replays(&self, id: Option<i64>) -> Result<Vec<PendingReplay>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, payload, reason FROM rejected
             WHERE replayed_at IS NULL AND ($1::bigint IS NULL OR id = $1)
             ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Marks a rejection as replayed: its message is now a stored order.
    pub async fn mark_replayed(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE rejected SET replayed_at = now() WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
