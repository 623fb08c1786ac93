//! The `rejected` table, replayed: which pending rejections a `replay-rejected` run takes
//! ([`ReplayFilter`]), and each one taken in a transaction of its own ([`ReplayClaim`]) that
//! holds its row lock (`FOR UPDATE SKIP LOCKED`) from the read to the mark, so that two runs
//! at once never both replay it, and a replayed rejection is never pending again.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{Acquire, Postgres, Transaction};

use super::rejected::MessageOrigin;
use super::save::{NewOrder, SavedBatch, save_in};
use super::{Store, StoreError};

/// How many rejections one run takes unless told otherwise (`--limit`).
pub const DEFAULT_REPLAY_LIMIT: i64 = 1000;

/// Which pending rejections a replay takes. Every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFilter {
    /// Only the rejection with this id.
    pub id: Option<i64>,
    /// Only these reason codes (`RejectKind::code`); empty: any.
    pub reasons: Vec<String>,
    /// Only those recorded at or after this RFC 3339 time (`seen_at`).
    pub since: Option<String>,
    /// Only those recorded before this RFC 3339 time.
    pub until: Option<String>,
    /// At most this many; the never re-checked first, then the longest unchecked, each by id.
    pub limit: i64,
}

impl ReplayFilter {
    /// Every pending rejection, [`DEFAULT_REPLAY_LIMIT`] at a time.
    pub fn all() -> Self {
        Self {
            id: None,
            reasons: Vec::new(),
            since: None,
            until: None,
            limit: DEFAULT_REPLAY_LIMIT,
        }
    }

    /// The pending rejection `id` only.
    pub fn one(id: i64) -> Self {
        Self {
            id: Some(id),
            ..Self::all()
        }
    }
}

/// The conditions of a [`ReplayFilter`] on `rejected`, binds `$1` to `$4`.
const PENDING_MATCHING: &str = r#"replayed_at IS NULL
    AND ($1::bigint IS NULL OR id = $1)
    AND (cardinality($2::text[]) = 0 OR reason_code = ANY($2::text[]))
    AND ($3::text IS NULL OR seen_at >= $3::timestamptz)
    AND ($4::text IS NULL OR seen_at < $4::timestamptz)"#;

/// A rejection waiting to be replayed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingReplay {
    /// Row id.
    pub id: i64,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Raw value (`None` for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// The reason it was rejected with.
    pub reason: String,
}

impl PendingReplay {
    /// The message as ingest saw it.
    pub fn origin(&self) -> MessageOrigin<'_> {
        MessageOrigin {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
        }
    }
}

/// One rejection taken for replay: its row, and the open transaction that holds its lock.
/// Dropped without [`ReplayClaim::finish`], everything it did is rolled back.
#[derive(Debug)]
pub struct ReplayClaim {
    /// The rejection.
    pub row: PendingReplay,
    /// Its transaction.
    tx: Transaction<'static, Postgres>,
    /// A dry run: no lock, and nothing ever committed.
    dry_run: bool,
}

/// What a replay found a rejection to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Its order is stored (or was already, with the same content): the rejection is replayed.
    Stored,
    /// Still rejected: it stays pending, re-checked now.
    StillRejected,
}

/// `query` with `filter`'s conditions bound as `$1` to `$4`, the parameters of
/// `PENDING_MATCHING`.
fn bind_filter<'q, O>(
    query: QueryScalar<'q, Postgres, O, PgArguments>,
    filter: &'q ReplayFilter,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    query
        .bind(filter.id)
        .bind(&filter.reasons)
        .bind(&filter.since)
        .bind(&filter.until)
}

impl Store {
    /// The ids of the pending rejections `filter` selects, in the order a replay takes them.
    #[tracing::instrument(
        level = "debug",
        name = "replay_candidates",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "rejected")
    )]
    pub async fn replay_candidates(&self, filter: &ReplayFilter) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT id FROM rejected WHERE {PENDING_MATCHING}
             ORDER BY replay_checked_at NULLS FIRST, id LIMIT $5"
        );
        Ok(bind_filter(sqlx::query_scalar(&sql), filter)
            .bind(filter.limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// How many pending rejections `filter` selects besides `taken`.
    #[tracing::instrument(
        level = "debug",
        name = "replay_remaining",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "rejected")
    )]
    pub async fn replay_remaining(
        &self,
        filter: &ReplayFilter,
        taken: &[i64],
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM rejected WHERE {PENDING_MATCHING} AND NOT (id = ANY($5))"
        );
        Ok(bind_filter(sqlx::query_scalar(&sql), filter)
            .bind(taken)
            .fetch_one(self.pool())
            .await?)
    }

    /// Takes the rejection `id` for replay if it is still pending and no other replay holds
    /// it (`None` otherwise). A dry run reads it without a lock.
    #[tracing::instrument(
        level = "debug",
        name = "claim_replay",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "rejected")
    )]
    pub async fn claim_replay(
        &self,
        id: i64,
        dry_run: bool,
    ) -> Result<Option<ReplayClaim>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let lock = if dry_run {
            ""
        } else {
            "FOR UPDATE SKIP LOCKED"
        };
        let sql = format!(
            r#"SELECT id, topic, "partition" AS partition, "offset" AS offset, key, payload, reason
               FROM rejected WHERE id = $1 AND replayed_at IS NULL {lock}"#
        );
        let row: Option<PendingReplay> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(row.map(|row| ReplayClaim { row, tx, dry_run }))
    }
}

impl ReplayClaim {
    /// Saves the order `uid` (canonical JSON `json`) decoded from the claimed message as
    /// ingest would (the duplicate policy; a conflict's rejection is this row already), inside
    /// the claim's transaction, behind a savepoint: PostgreSQL refusing it leaves the claim
    /// usable.
    pub async fn save(&mut self, uid: &str, json: &str) -> Result<SavedBatch, StoreError> {
        let order = NewOrder {
            uid,
            json,
            origin: self.row.origin(),
        };
        let mut savepoint = (&mut self.tx).begin().await?;
        match save_in(&mut savepoint, &[order], &[]).await {
            Ok(saved) => {
                savepoint.commit().await?;
                Ok(saved)
            }
            Err(error) => {
                // A failed rollback leaves the whole claim to be rolled back when dropped.
                let _ = savepoint.rollback().await;
                Err(error)
            }
        }
    }

    /// Records `verdict` and commits: a stored one is marked replayed, for good; a still
    /// rejected one is marked re-checked, so that a bounded run takes others first next time.
    /// A dry run records nothing and rolls everything back.
    #[tracing::instrument(
        level = "debug",
        name = "finish_replay",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "UPDATE", db.sql.table = "rejected")
    )]
    pub async fn finish(mut self, verdict: ReplayVerdict) -> Result<(), StoreError> {
        if self.dry_run {
            self.tx.rollback().await?;
            return Ok(());
        }
        let sql = match verdict {
            ReplayVerdict::Stored => {
                "UPDATE rejected SET replayed_at = now(), replay_checked_at = now()
                 WHERE id = $1 AND replayed_at IS NULL"
            }
            ReplayVerdict::StillRejected => {
                "UPDATE rejected SET replay_checked_at = now()
                 WHERE id = $1 AND replayed_at IS NULL"
            }
        };
        sqlx::query(sql)
            .bind(self.row.id)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
