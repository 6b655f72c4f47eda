//! Per-tenant order settings.

use sqlx::PgConnection;
use uuid::Uuid;

use super::DbError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub payment_window_minutes: i64,
    pub currency: Option<String>,
    pub time_zone: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { payment_window_minutes: 0, currency: None, time_zone: "UTC".into() }
    }
}

pub async fn get(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Settings, DbError> {
    let row: Option<(i64, Option<String>, String)> =
        sqlx::query_as("SELECT payment_window_minutes, currency, time_zone FROM settings WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?;
    Ok(row
        .map(|(payment_window_minutes, currency, time_zone)| Settings { payment_window_minutes, currency, time_zone })
        .unwrap_or_default())
}

pub async fn put(conn: &mut PgConnection, tenant_id: Uuid, settings: &Settings) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO settings (tenant_id, payment_window_minutes, currency, time_zone) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET payment_window_minutes = $2, currency = $3, time_zone = $4, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(settings.payment_window_minutes)
    .bind(&settings.currency)
    .bind(&settings.time_zone)
    .execute(conn)
    .await?;
    Ok(())
}
