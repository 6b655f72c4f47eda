//! Per-tenant inventory settings.

use money::Currency;
use sqlx::PgConnection;
use uuid::Uuid;

use super::DbError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub default_low_stock_threshold: i64,
    pub currency: Option<Currency>,
}

pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Settings, DbError> {
    read(conn, tenant_id, "SELECT default_low_stock_threshold, currency FROM settings WHERE tenant_id = $1").await
}

/// The settings as they are, locked until the transaction ends (a change compares against them).
pub async fn lock(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Settings, DbError> {
    read(conn, tenant_id, "SELECT default_low_stock_threshold, currency FROM settings WHERE tenant_id = $1 FOR UPDATE")
        .await
}

async fn read(conn: &mut PgConnection, tenant_id: Uuid, statement: &'static str) -> Result<Settings, DbError> {
    let row: Option<(i64, Option<String>)> = sqlx::query_as(statement).bind(tenant_id).fetch_optional(conn).await?;
    Ok(match row {
        Some((threshold, currency)) => {
            Settings { default_low_stock_threshold: threshold, currency: currency.and_then(|c| c.parse().ok()) }
        }
        None => Settings::default(),
    })
}

pub async fn put(conn: &mut PgConnection, tenant_id: Uuid, settings: &Settings) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO settings (tenant_id, default_low_stock_threshold, currency) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET default_low_stock_threshold = $2, currency = $3, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(settings.default_low_stock_threshold)
    .bind(settings.currency.map(|c| c.code().to_string()))
    .execute(conn)
    .await?;
    Ok(())
}
