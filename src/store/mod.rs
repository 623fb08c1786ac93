//! PostgreSQL: the record of truth. Orders are kept as JSONB keyed by `order_uid`; messages
//! that broke the contract are kept in `rejected`. Migrations in `migrations/` are embedded.
//!
//! This file owns the pool and [`StoreError`]; every query is a method of [`Store`], one file
//! per table and side: `save.rs` (a batch in one transaction), `orders.rs` (reading orders
//! back), `rejected.rs` (recording and replaying rejections), `rejected_summary.rs` (the
//! page's list of them). `read.rs` holds the traits a test can fake ([`OrderLookup`],
//! [`RecentOrders`], [`RecentLists`], [`DatabasePing`]); `batched_lookup.rs` gathers
//! concurrent misses into one query ([`BatchedLookup`]). Everything is used from here:
//! `store::NewOrder`, not `store::save::NewOrder`.

mod batched_lookup;
mod orders;
mod read;
mod rejected;
mod rejected_summary;
mod save;

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use batched_lookup::BatchedLookup;
pub use read::{DatabasePing, OrderLookup, RecentLists, RecentOrders};
pub use rejected::{MessageOrigin, PendingReplay, RejectedMessage};
pub use rejected_summary::{PREVIEW_CHARS, RejectedSummary};
pub use save::{NewOrder, SaveOutcome, SavedBatch};

/// The embedded migrations from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A failure to talk to PostgreSQL, or a stored document that no longer decodes. Cheap to
/// clone (the driver's error is shared), so that one failure can answer every request that
/// waited for the same read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out...): retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The database did not answer within the time given to it: retry later.
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Query(#[source] Arc<sqlx::Error>),
    /// A stored order that does not decode as an [`crate::order::Order`].
    #[error("stored order {uid} does not decode: {reason}")]
    Corrupt {
        /// The order's id.
        uid: String,
        /// What serde said.
        reason: String,
    },
}

impl StoreError {
    /// Whether waiting and trying again may succeed (the database is down or slow), as opposed
    /// to an error that will be the same next time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }

    /// Logs a failed read once, where it failed (one line per failed query, however many
    /// requests waited for it): a warning while the database is down or slow, an error
    /// otherwise. `what` names the read.
    pub(crate) fn log_read_failure(&self, what: &'static str) {
        if self.is_unavailable() {
            tracing::warn!(error = %self, what, "database read failed: database unavailable");
        } else {
            tracing::error!(error = %self, what, "database read failed");
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(Arc::new(e)),
            // Connection exceptions (08), insufficient resources (53) and operator intervention
            // (57: the server is shutting down or restarting) pass when the server is back.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|code| ["08", "53", "57"].iter().any(|c| code.starts_with(c))) =>
            {
                Self::Unavailable(Arc::new(e))
            }
            other => Self::Query(Arc::new(other)),
        }
    }
}

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
