//! [`StoreError`]: what can go wrong talking to PostgreSQL, sorted by what the caller can do
//! about it: wait and retry (the database is down, slow or out of resources), give up on the
//! data (PostgreSQL refused it: a [`Refusal`]), or report a bug.

use std::fmt;
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
    /// PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23, integrity
    /// constraint violation): the same data would be refused again, so retrying cannot help.
    #[error("database refused the data: {0}")]
    Refused(Refusal),
    /// The database answered with another error.
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

/// Why PostgreSQL refused data: its SQLSTATE and its primary message. The error's `DETAIL`
/// is left out on purpose: for a check or not-null violation it quotes the failing row, which
/// is an order's content (personal data), and this text is logged and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The five-character SQLSTATE (`23514`: check violation).
    pub sqlstate: String,
    /// PostgreSQL's primary message (for a trigger's `RAISE`, whatever the trigger says).
    pub message: String,
}

/// Renders as `<message> (SQLSTATE <code>)`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}

/// The SQLSTATE classes of errors that are about the data, not the database: 22 (data
/// exception) and 23 (integrity constraint violation).
const REFUSAL_CLASSES: [&str; 2] = ["22", "23"];

/// The SQLSTATE classes that pass when the server is back: connection exceptions (08),
/// insufficient resources (53) and operator intervention (57: the server is shutting down or
/// restarting).
const UNAVAILABLE_CLASSES: [&str; 3] = ["08", "53", "57"];

impl StoreError {
    /// What PostgreSQL refused, if this is a refusal of the data (see [`StoreError::Refused`]).
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// Whether waiting and trying again may succeed (the database is down or slow), as opposed
    /// to an error that will be the same next time.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }

    /// The setting to check when this error stops a start-up, named for the operator, never
    /// quoted (`DATABASE_URL` holds a password): the TLS parameters of `DATABASE_URL` when
    /// the TLS handshake failed (an unknown CA, a certificate for another name, a server
    /// without TLS under `sslmode=require`), `DATABASE_URL` otherwise.
    pub fn setting_to_check(&self) -> &'static str {
        match self {
            Self::Unavailable(e) if is_tls_failure(e) => {
                "DATABASE_URL: check its sslmode and sslrootcert"
            }
            _ => "DATABASE_URL",
        }
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

/// Whether the driver failed at TLS: the server refused it (`sslmode=require` or stricter
/// against a server without TLS), or rustls refused the server's certificate, which sqlx
/// reports as an I/O error of the socket carrying the [`rustls::Error`].
fn is_tls_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && let Some(code) = db.code()
        {
            let in_class = |classes: &[&str]| classes.iter().any(|c| code.starts_with(c));
            if in_class(&REFUSAL_CLASSES) {
                return Self::Refused(Refusal {
                    sqlstate: code.into_owned(),
                    message: db.message().to_owned(),
                });
            }
            if in_class(&UNAVAILABLE_CLASSES) {
                return Self::Unavailable(Arc::new(e));
            }
        }
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(Arc::new(e)),
            other => Self::Query(Arc::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// An error as PostgreSQL sends it: a SQLSTATE, a primary message and a detail.
    #[derive(Debug)]
    struct FakeDbError {
        code: Option<&'static str>,
        message: &'static str,
        detail: &'static str,
    }

    impl fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} ({})", self.message, self.detail)
        }
    }

    impl StdError for FakeDbError {}

    impl DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            self.message
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            self.code.map(Cow::Borrowed)
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn database_error(code: Option<&'static str>) -> StoreError {
        StoreError::from(sqlx::Error::Database(Box::new(FakeDbError {
            code,
            message: "new row for relation \"orders\" violates check constraint \"c\"",
            detail: "Failing row contains (Ivan Ivanov, +79990000000)",
        })))
    }

    #[test]
    fn a_failed_tls_handshake_points_at_sslmode_and_sslrootcert() {
        let no_tls = StoreError::from(sqlx::Error::Tls("server does not support TLS".into()));
        let refused_certificate = StoreError::from(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        for tls in [no_tls, refused_certificate] {
            assert!(tls.is_unavailable(), "{tls}");
            assert_eq!(
                tls.setting_to_check(),
                "DATABASE_URL: check its sslmode and sslrootcert",
                "{tls}"
            );
        }
        let refused = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(refused.setting_to_check(), "DATABASE_URL");
    }

    #[test]
    fn data_exceptions_and_integrity_violations_are_refusals() {
        // 22P02 invalid text representation, 22001 string too long, 22P05 untranslatable
        // character, 23514 check, 23502 not null, 23505 unique, 23503 foreign key.
        for code in [
            "22P02", "22001", "22P05", "23514", "23502", "23505", "23503",
        ] {
            let error = database_error(Some(code));
            let refusal = error
                .refusal()
                .unwrap_or_else(|| panic!("{code}: {error:?}"));
            assert_eq!(refusal.sqlstate, code);
            assert!(!error.is_unavailable(), "{code}");
        }
    }

    #[test]
    fn a_refusal_keeps_the_primary_message_and_never_the_detail() {
        let error = database_error(Some("23514"));
        let refusal = error.refusal().expect("a refusal");
        assert_eq!(
            refusal.to_string(),
            "new row for relation \"orders\" violates check constraint \"c\" (SQLSTATE 23514)"
        );
        assert!(!error.to_string().contains("Ivan"), "{error}");
    }

    #[test]
    fn connection_resource_and_operator_errors_are_unavailable_not_refused() {
        // 08006 connection failure, 08P01 protocol violation, 53300 too many connections,
        // 53100 disk full, 57P01 admin shutdown, 57P03 cannot connect now.
        for code in ["08006", "08P01", "53300", "53100", "57P01", "57P03"] {
            let error = database_error(Some(code));
            assert!(error.is_unavailable(), "{code}: {error:?}");
            assert_eq!(error.refusal(), None, "{code}");
        }
    }

    #[test]
    fn other_database_errors_are_not_refusals() {
        // 40P01 deadlock, 40001 serialization failure, 42P01 undefined table, 25P02 aborted
        // transaction, no code at all: retried, as before.
        for code in [
            Some("40P01"),
            Some("40001"),
            Some("42P01"),
            Some("25P02"),
            None,
        ] {
            let error = database_error(code);
            assert!(matches!(error, StoreError::Query(_)), "{code:?}: {error:?}");
            assert_eq!(error.refusal(), None, "{code:?}");
        }
    }

    #[test]
    fn pool_io_and_timeouts_are_unavailable_not_refused() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        for error in [
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::from(sqlx::Error::Io(io)),
            StoreError::Timeout(Duration::from_secs(1)),
        ] {
            assert!(error.is_unavailable(), "{error:?}");
            assert_eq!(error.refusal(), None, "{error:?}");
        }
    }
}
