//! PostgreSQL: the record of truth. Orders are kept as JSONB keyed by `order_uid`; messages
//! that broke the contract are kept in `rejected`. Migrations in `migrations/` are embedded.

pub mod batch;
pub mod orders;
pub mod rejected;

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use batch::NewOrder;
pub use orders::SaveOutcome;
pub use rejected::{PendingReplay, RejectedMessage, Source};

/// The embedded migrations from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A failure to talk to PostgreSQL, or a stored document that no longer decodes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out...): retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    /// The failure of one batched read, shared by every lookup that waited for it (see
    /// [`orders::BatchedLookup`]).
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
    /// A stored order that does not decode as an [`crate::order::Order`].
    #[error("stored order {uid} does not decode: {reason}")]
    Corrupt {
        /// The order's id.
        uid: String,
        /// What serde said.
        reason: String,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            // Connection exceptions (08), insufficient resources (53) and operator intervention
            // (57: the server is shutting down or restarting) pass when the server is back.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|code| ["08", "53", "57"].iter().any(|c| code.starts_with(c))) =>
            {
                Self::Unavailable(e)
            }
            other => Self::Query(other),
        }
    }
}

/// Looking an order up by id: the read side the HTTP API needs, as a trait so that handlers
/// can be tested with a fake.
pub trait OrderLookup: Send + Sync + 'static {
    /// The order's canonical JSON, or `None` if no order has this id.
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<bytes::Bytes>, StoreError>>;
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
        let _timer = crate::metrics::QueryTimer::start("ping");
        match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&self.pool)).await {
            Ok(result) => result.map(|_| ()).map_err(StoreError::from),
            Err(_elapsed) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
