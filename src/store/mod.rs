//! PostgreSQL: the record of truth. Orders are kept as JSONB keyed by `order_uid`; messages
//! that broke the contract are kept in `rejected`. Migrations in `migrations/` are embedded.
//!
//! This file owns the pool; `error.rs` owns [`StoreError`]. Every query is a method of
//! [`Store`], one file per table and side: `save.rs` (a batch in one transaction),
//! `orders.rs` (reading orders back), `rejected.rs` (recording rejections),
//! `rejected_replay.rs` (taking them for replay, one row lock each), `rejected_summary.rs`
//! (the page's list of them). `read.rs` holds the traits a test can fake ([`OrderLookup`],
//! [`RecentOrders`], [`RecentLists`], [`DatabasePing`]); `batched_lookup.rs` gathers
//! concurrent misses into one query ([`BatchedLookup`]). Everything is used from here:
//! `store::NewOrder`, not `store::save::NewOrder`.
//!
//! Each query method has a DEBUG span named like its query timer, with `db.system`,
//! `db.operation`, `db.sql.table` and counts, never an order's contents: exported as a
//! client span when traces are (docs/operations.md, "Tracing"), silent otherwise.

mod batched_lookup;
mod error;
mod orders;
mod read;
mod rejected;
mod rejected_replay;
mod rejected_summary;
mod save;

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use batched_lookup::BatchedLookup;
pub use error::{Refusal, StoreError};
pub use read::{DatabasePing, OrderLookup, RecentLists, RecentOrders};
pub use rejected::{MessageOrigin, RejectedMessage};
pub use rejected_replay::{
    DEFAULT_REPLAY_LIMIT, PendingReplay, ReplayClaim, ReplayFilter, ReplayVerdict,
};
pub use rejected_summary::{PREVIEW_CHARS, RejectedSummary};
pub use save::{NewOrder, SaveOutcome, SavedBatch};

/// The embedded migrations from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The connection pool and every query the service runs.
#[derive(Clone, Debug)]
pub struct Store {
    /// The pool; cheap to clone.
    pool: PgPool,
}

impl Store {
    /// Connects lazily to `url`: the first query opens the first connection, and a request
    /// waits at most `acquire_timeout` for one.
    pub fn connect_lazy(url: &str, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect_lazy(url)?;
        Ok(Self { pool })
    }

    /// Creates the database named in `url` if it does not exist yet.
    pub async fn create_database_if_missing(url: &str) -> Result<(), StoreError> {
        if !sqlx::Postgres::database_exists(url).await? {
            sqlx::Postgres::create_database(url).await?;
        }
        Ok(())
    }

    /// Applies the embedded migrations that have not been applied yet.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Whether the database answers `SELECT 1` within `timeout` (the readiness check).
    #[tracing::instrument(
        level = "debug",
        name = "ping",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT")
    )]
    pub async fn ping(&self, timeout: Duration) -> Result<(), StoreError> {
        let _timer = crate::infra::metrics::QueryTimer::start("ping");
        match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_elapsed) => Err(StoreError::Timeout(timeout)),
        }
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
