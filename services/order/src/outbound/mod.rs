//! How the order service reaches the world: its Postgres schema and the outbox.

pub mod codes;
pub mod orders;
pub mod queries;
pub mod settings;
pub mod tiktok_api;

/// Database failures as the domain sees them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match db::classify(&err) {
            db::DbErrorKind::Unavailable | db::DbErrorKind::Conflict => DbError::Unavailable(err.to_string()),
            db::DbErrorKind::UniqueViolation | db::DbErrorKind::ConstraintViolation | db::DbErrorKind::Other => {
                DbError::Internal(err.to_string())
            }
        }
    }
}

impl From<bus::Error> for DbError {
    fn from(err: bus::Error) -> Self {
        match err {
            bus::Error::Database(err) => err.into(),
            other => DbError::Internal(other.to_string()),
        }
    }
}
