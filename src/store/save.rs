//! Saving a whole batch of messages in one transaction: its orders with one set-based insert
//! under the duplicate policy, its rejections (conflicts included) with another. The one place
//! where an order in conflict becomes a rejection: [`SavedBatch`] says which, and everyone
//! after the commit (the log, the counters, the dead-letter topic, `replay-rejected`) takes
//! them from there.

use std::collections::HashSet;

use super::rejected::{MessageOrigin, RejectedMessage, record_rejections};
use super::{Store, StoreError};
use crate::infra::metrics::QueryTimer;
use crate::order::Rejection;

/// What saving an order did, under the contract's duplicate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new order: it is stored now.
    Stored,
    /// The same `order_uid` with the same content (compared as JSON): a redelivery, nothing
    /// changed.
    Duplicate,
    /// The same `order_uid` with different content: the stored order stays as it was and the
    /// message is rejected as `conflict`.
    Conflict,
}

/// A valid order of a batch, with the message it came in.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    /// Its `order_uid`.
    pub uid: &'a str,
    /// Its canonical JSON.
    pub json: &'a str,
    /// The message it came in (recorded if it turns out to be a conflict).
    pub origin: MessageOrigin<'a>,
}

/// What a saved batch did: the outcome of each order, and the rejections recorded for the
/// orders in conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBatch {
    /// What became of each order, in the order they were given.
    pub outcomes: Vec<SaveOutcome>,
    /// The orders in conflict, as recorded: the order's index and its rejection.
    pub conflicts: Vec<(usize, Rejection)>,
}

impl SavedBatch {
    /// Every rejection of the batch: `rejected` (what broke the contract), then the recorded
    /// conflicts, each with the message its order came in (`orders` is what was saved).
    pub fn all_rejected<'a>(
        &'a self,
        orders: &'a [NewOrder<'a>],
        rejected: &[RejectedMessage<'a>],
    ) -> Vec<RejectedMessage<'a>> {
        let conflicts = self.conflicts.iter().map(|(i, rejection)| RejectedMessage {
            origin: orders[*i].origin,
            rejection,
        });
        rejected.iter().copied().chain(conflicts).collect()
    }
}

impl Store {
    /// Saves `orders` and records `rejected` in one transaction. Returns what became of each
    /// order, in order; conflicts are recorded as rejections in the same transaction, and
    /// returned too.
    ///
    /// The same `order_uid` twice in one batch follows the duplicate policy too: the first
    /// occurrence is inserted, the others compared with it.
    #[tracing::instrument(
        level = "debug",
        name = "save_batch",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "INSERT", db.sql.table = "orders", db.orders = orders.len(), db.rejections = rejected.len())
    )]
    pub async fn save_batch(
        &self,
        orders: &[NewOrder<'_>],
        rejected: &[RejectedMessage<'_>],
    ) -> Result<SavedBatch, StoreError> {
        let _timer = QueryTimer::start("save_batch");
        let mut tx = self.pool().begin().await?;
        let saved = save_in(&mut tx, orders, rejected).await?;
        tx.commit().await?;
        Ok(saved)
    }
}

/// [`Store::save_batch`] on `tx`, inside a transaction the caller commits (replay's, which
/// also marks the rejection it stores in it).
pub(super) async fn save_in(
    tx: &mut sqlx::PgConnection,
    orders: &[NewOrder<'_>],
    rejected: &[RejectedMessage<'_>],
) -> Result<SavedBatch, StoreError> {
    let uids: Vec<&str> = orders.iter().map(|o| o.uid).collect();
    let docs: Vec<&str> = orders.iter().map(|o| o.json).collect();
    // The first occurrence of each id, in id order (so that concurrent batches lock rows
    // in the same order).
    let inserted: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO orders (order_uid, doc, body)
             SELECT DISTINCT ON (uid) uid, doc::jsonb, doc
             FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS u(uid, doc, i)
             ORDER BY uid, i
             ON CONFLICT (order_uid) DO NOTHING
             RETURNING order_uid",
    )
    .bind(&uids)
    .bind(&docs)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();

    // Everything but the inserted first occurrences is compared with what is stored now
    // (this transaction's inserts included). JSONB equality compares parsed JSON.
    let mut first_seen = HashSet::new();
    let mut outcomes = Vec::with_capacity(orders.len());
    let mut to_compare = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        if inserted.contains(order.uid) && first_seen.insert(order.uid) {
            outcomes.push(SaveOutcome::Stored);
        } else {
            outcomes.push(SaveOutcome::Duplicate);
            to_compare.push(i);
        }
    }
    if !to_compare.is_empty() {
        let indexes: Vec<i32> = to_compare.iter().map(|&i| i as i32).collect();
        let cmp_uids: Vec<&str> = to_compare.iter().map(|&i| orders[i].uid).collect();
        let cmp_docs: Vec<&str> = to_compare.iter().map(|&i| orders[i].json).collect();
        let differing: Vec<i32> = sqlx::query_scalar(
            "SELECT u.i FROM UNNEST($1::int4[], $2::text[], $3::text[]) AS u(i, uid, doc)
                 JOIN orders o ON o.order_uid = u.uid
                 WHERE o.doc <> u.doc::jsonb",
        )
        .bind(&indexes)
        .bind(&cmp_uids)
        .bind(&cmp_docs)
        .fetch_all(&mut *tx)
        .await?;
        for i in differing {
            outcomes[i as usize] = SaveOutcome::Conflict;
        }
    }

    let conflicts: Vec<(usize, Rejection)> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| **outcome == SaveOutcome::Conflict)
        .map(|(i, _)| (i, Rejection::conflict(orders[i].uid)))
        .collect();
    let saved = SavedBatch {
        outcomes,
        conflicts,
    };
    record_rejections(tx, &saved.all_rejected(orders, rejected)).await?;
    Ok(saved)
}
