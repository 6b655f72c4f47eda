//! What a database error means to a caller, so adapters can turn it into a domain error.

/// The kinds of database failure callers branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A unique constraint (or a concurrently created object) already holds this value.
    UniqueViolation,
    /// A foreign key or check constraint refused the row.
    ConstraintViolation,
    /// Serialization failure or deadlock: the transaction may simply be run again.
    Conflict,
    /// The database could not be reached or the pool timed out: retry later, answer 503.
    Unavailable,
    /// Anything else: a bug or a broken invariant.
    Other,
}

pub fn classify(err: &sqlx::Error) -> DbErrorKind {
    match err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") | Some("42P04") | Some("42710") => DbErrorKind::UniqueViolation,
            Some("23503") | Some("23514") | Some("23502") => DbErrorKind::ConstraintViolation,
            Some("40001") | Some("40P01") => DbErrorKind::Conflict,
            // Class 08 (connection exception), 57P01-03 (admin shutdown, crash, cannot connect now).
            Some(code) if code.starts_with("08") || code.starts_with("57P") => DbErrorKind::Unavailable,
            _ => DbErrorKind::Other,
        },
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            DbErrorKind::Unavailable
        }
        _ => DbErrorKind::Other,
    }
}

/// A database failure as a service's domain sees it: retry later, or a bug.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// Unreachable, timed out, or a serialization conflict: answer 503/UNAVAILABLE, retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match classify(&err) {
            DbErrorKind::Unavailable | DbErrorKind::Conflict => DbError::Unavailable(err.to_string()),
            DbErrorKind::UniqueViolation | DbErrorKind::ConstraintViolation | DbErrorKind::Other => {
                DbError::Internal(err.to_string())
            }
        }
    }
}
