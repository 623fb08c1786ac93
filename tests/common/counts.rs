//! How many messages the service has handled: rows in `orders` and in `rejected`.

use order_service::store::Store;

/// Both counts, read in one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Rows in `orders`.
    pub stored: i64,
    /// Rows in `rejected`.
    pub rejected: i64,
}

impl Counts {
    /// Messages that became an order or a rejection.
    pub fn handled(&self) -> i64 {
        self.stored + self.rejected
    }
}

/// The counts now, or the error (while the database is down, say).
pub async fn try_counts(store: &Store) -> sqlx::Result<Counts> {
    let (stored, rejected) =
        sqlx::query_as("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM rejected)")
            .fetch_one(store.pool())
            .await?;
    Ok(Counts { stored, rejected })
}

/// The counts now; the database must answer.
pub async fn counts(store: &Store) -> Counts {
    try_counts(store).await.expect("the count query")
}
