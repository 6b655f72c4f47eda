//! Per-tenant draft settings.

use sqlx::PgConnection;
use uuid::Uuid;

use super::DbError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub ttl_minutes: i64,
    pub auto_approve: bool,
    pub trusted_customers: Vec<String>,
    pub currency: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { ttl_minutes: 24 * 60, auto_approve: false, trusted_customers: Vec::new(), currency: None }
    }
}

pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Settings, DbError> {
    let row: Option<(i64, bool, Vec<String>, Option<String>)> = sqlx::query_as(
        "SELECT ttl_minutes, auto_approve, trusted_customers, currency FROM settings WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|(ttl_minutes, auto_approve, trusted_customers, currency)| Settings {
            ttl_minutes,
            auto_approve,
            trusted_customers,
            currency,
        })
        .unwrap_or_default())
}

pub async fn put(conn: &mut PgConnection, tenant_id: Uuid, settings: &Settings) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO settings (tenant_id, ttl_minutes, auto_approve, trusted_customers, currency) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id) DO UPDATE SET ttl_minutes = $2, auto_approve = $3, trusted_customers = $4, currency = $5, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(settings.ttl_minutes)
    .bind(settings.auto_approve)
    .bind(&settings.trusted_customers)
    .bind(&settings.currency)
    .execute(conn)
    .await?;
    Ok(())
}
