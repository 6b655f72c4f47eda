//! The channel registry in Postgres.

use events::ingest::Platform;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub platform: Platform,
    pub external_id: String,
    pub display_name: String,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub has_credentials: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("channel {0} is already registered")]
    AlreadyRegistered(String),
    #[error("channel not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match db::classify(&err) {
            db::DbErrorKind::Unavailable | db::DbErrorKind::Conflict => Error::Unavailable(err.to_string()),
            db::DbErrorKind::UniqueViolation => Error::AlreadyRegistered("this platform id".into()),
            db::DbErrorKind::ConstraintViolation | db::DbErrorKind::Other => Error::Internal(err.to_string()),
        }
    }
}

type Row = (Uuid, Uuid, String, String, String, bool, OffsetDateTime, bool);

const COLUMNS: &str =
    "id, tenant_id, platform, external_id, display_name, enabled, created_at, credentials IS NOT NULL";

fn from_row(row: Row) -> Result<Channel, Error> {
    let (id, tenant_id, platform, external_id, display_name, enabled, created_at, has_credentials) = row;
    let platform = Platform::parse(&platform).ok_or_else(|| Error::Internal(format!("unknown platform {platform}")))?;
    Ok(Channel { id, tenant_id, platform, external_id, display_name, enabled, created_at, has_credentials })
}

#[derive(Clone)]
pub struct ChannelRepository {
    pool: PgPool,
}

impl ChannelRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn register(
        &self,
        tenant_id: Uuid,
        platform: Platform,
        external_id: &str,
        display_name: &str,
    ) -> Result<Channel, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO channels (id, tenant_id, platform, external_id, display_name) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (platform, external_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(platform.as_str())
        .bind(external_id)
        .bind(display_name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => from_row(row),
            None => Err(Error::AlreadyRegistered(format!("{}:{external_id}", platform.as_str()))),
        }
    }

    /// Every channel, or one tenant's.
    pub async fn list(&self, tenant_id: Option<Uuid>) -> Result<Vec<Channel>, Error> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channels WHERE ($1::uuid IS NULL OR tenant_id = $1) ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// A channel, only if it belongs to `tenant_id` when one is given.
    pub async fn get(&self, id: Uuid, tenant_id: Option<Uuid>) -> Result<Channel, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channels WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)"
        ))
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()?.ok_or(Error::NotFound)
    }

    pub async fn disable(&self, id: Uuid) -> Result<Channel, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE channels SET enabled = false, disabled_at = coalesce(disabled_at, now()) WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()?.ok_or(Error::NotFound)
    }

    pub async fn enable(&self, id: Uuid) -> Result<Channel, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE channels SET enabled = true, disabled_at = NULL WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()?.ok_or(Error::NotFound)
    }

    pub async fn set_credentials(
        &self,
        id: Uuid,
        tenant_id: Option<Uuid>,
        sealed: &[u8],
        access_token_expires_at: Option<OffsetDateTime>,
    ) -> Result<Channel, Error> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE channels SET credentials = $3, credentials_updated_at = now(), access_token_expires_at = $4,
               refresh_failures = 0, last_refresh_error = NULL
             WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(tenant_id)
        .bind(sealed)
        .bind(access_token_expires_at)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()?.ok_or(Error::NotFound)
    }

    /// The id and sealed credentials of a tenant's channel found by its platform id.
    pub async fn sealed_credentials_by_external_id(
        &self,
        platform: Platform,
        external_id: &str,
        tenant_id: Uuid,
    ) -> Result<(Uuid, Option<Vec<u8>>), Error> {
        let row: Option<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, credentials FROM channels WHERE platform = $1 AND external_id = $2 AND tenant_id = $3",
        )
        .bind(platform.as_str())
        .bind(external_id)
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::NotFound)
    }

    /// Every channel's sealed credentials, whatever its tenant: for the re-seal after a key
    /// rotation (a system task, never an API call).
    pub async fn all_sealed_credentials(&self) -> Result<Vec<(Uuid, Vec<u8>)>, Error> {
        Ok(sqlx::query_as("SELECT id, credentials FROM channels WHERE credentials IS NOT NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Replaces a channel's sealed credentials if they are still `expected`: new credentials set
    /// meanwhile are kept. Returns whether it replaced them.
    pub async fn replace_sealed_credentials(&self, id: Uuid, expected: &[u8], sealed: &[u8]) -> Result<bool, Error> {
        let replaced = sqlx::query("UPDATE channels SET credentials = $3 WHERE id = $1 AND credentials = $2")
            .bind(id)
            .bind(expected)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(replaced.rows_affected() == 1)
    }

    /// The sealed credentials of a tenant's channel.
    pub async fn sealed_credentials(&self, id: Uuid, tenant_id: Uuid) -> Result<Option<Vec<u8>>, Error> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT credentials FROM channels WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(c,)| c).ok_or(Error::NotFound)
    }
}
