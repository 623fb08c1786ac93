//! The `rejected` table for tests: recording a rejection through ingest's own path (a batch
//! with no orders) and reading back the most recent ones with plain SQL on the store's pool,
//! so that the production `Store` carries no test-only queries.

use order_service::order::Rejection;
use order_service::store::{MessageOrigin, RejectedMessage, Store, StoreError};

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

/// Records `message` in `rejected` through ingest's own path: a batch with no orders and
/// this one rejection.
pub async fn record_rejection(
    store: &Store,
    message: &RejectedMessage<'_>,
) -> Result<(), StoreError> {
    store
        .save_batch(&[], std::slice::from_ref(message))
        .await
        .map(|_| ())
}

/// Records a rejection of `payload` (read from partition 0 of `orders` at `offset`) for
/// `rejection`, through [`record_rejection`].
pub async fn record_rejection_at(
    store: &Store,
    offset: i64,
    payload: &[u8],
    rejection: &Rejection,
) {
    let message = RejectedMessage {
        origin: MessageOrigin {
            topic: "orders",
            partition: 0,
            offset,
            key: None,
            payload: Some(payload),
        },
        rejection,
    };
    record_rejection(store, &message).await.expect("recorded");
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
