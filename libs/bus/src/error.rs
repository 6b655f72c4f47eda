//! Errors of the bus, by what a caller can do about them.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("NATS is unreachable or timed out: {0}")]
    Unavailable(String),
    #[error("no stream takes this subject (yet): {0}")]
    NoStream(String),
    #[error("JetStream refused the request: {0}")]
    JetStream(String),
    #[error("event does not serialise: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl resilience::Classify for Error {
    fn retryability(&self) -> resilience::Retryability {
        match self {
            Error::Unavailable(_) | Error::NoStream(_) => resilience::Retryability::Transient,
            Error::Database(err) => match db::classify(err) {
                db::DbErrorKind::Unavailable | db::DbErrorKind::Conflict => resilience::Retryability::Transient,
                db::DbErrorKind::UniqueViolation | db::DbErrorKind::ConstraintViolation | db::DbErrorKind::Other => {
                    resilience::Retryability::Permanent
                }
            },
            Error::JetStream(_) | Error::Serialise(_) => resilience::Retryability::Permanent,
        }
    }
}

impl From<Error> for db::DbError {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(err) => err.into(),
            other => db::DbError::Internal(other.to_string()),
        }
    }
}
