//! [`StoreError`]: what can go wrong talking to PostgreSQL, sorted by what the caller can do
//! about it.

use std::sync::Arc;
use std::time::Duration;

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
