//! The `rejected` table written and read directly, for tests: recording a rejection as ingest
//! records one (the same columns; the same topic/partition/offset again does nothing) and
//! reading back the most recent ones. Plain SQL on the store's pool, so the production
//! `Store` carries no test-only queries.

use order_service::store::{RejectedMessage, Store};

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
    /// Stable rule name (`RejectKind::code`).
    pub reason_code: String,
    /// The full reason.
    pub reason: String,
}

/// Records `message` in `rejected`, as ingest does.
pub async fn record_rejection(store: &Store, message: &RejectedMessage<'_>) -> sqlx::Result<()> {
    let origin = message.origin;
    let rejection = message.rejection;
    sqlx::query(
        r#"INSERT INTO rejected (topic, "partition", "offset", key, payload, reason_code, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (topic, "partition", "offset") DO NOTHING"#,
    )
    .bind(origin.topic)
    .bind(origin.partition)
    .bind(origin.offset)
    .bind(origin.key)
    .bind(origin.payload)
    .bind(rejection.kind.code())
    // PostgreSQL text cannot hold U+0000, which a field name from a message may.
    .bind(rejection.to_string().replace('\0', "\\u0000"))
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The `limit` most recent rejections, newest first.
pub async fn recent_rejections(store: &Store, limit: i64) -> sqlx::Result<Vec<RejectedRow>> {
    sqlx::query_as(
        r#"SELECT id, topic, "partition" AS partition, "offset" AS offset, payload,
                  reason_code, reason
           FROM rejected ORDER BY id DESC LIMIT $1"#,
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await
}
