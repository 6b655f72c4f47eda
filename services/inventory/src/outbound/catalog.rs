//! The catalog in Postgres.

use std::collections::BTreeMap;

use bus::{Envelope, Namespace};
use events::inventory::CatalogChanged;
use money::Money;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use crate::domain::catalog::{CatalogEntry, Sku};

/// A catalog item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub sku: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub price: Money,
    pub active: bool,
    pub retailer_id: Option<String>,
    pub product_id: Option<String>,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "sku, name, attributes, price_minor, currency, active, retailer_id, product_id, updated_at";

fn from_row(row: &sqlx::postgres::PgRow) -> Result<StoredItem, DbError> {
    let attributes: serde_json::Value = row.try_get("attributes")?;
    let currency: String = row.try_get("currency")?;
    let currency = currency.parse().map_err(|e: money::Error| DbError::Internal(e.to_string()))?;
    Ok(StoredItem {
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        attributes: serde_json::from_value(attributes).unwrap_or_default(),
        price: Money::new(row.try_get("price_minor")?, currency),
        active: row.try_get("active")?,
        retailer_id: row.try_get("retailer_id")?,
        product_id: row.try_get("product_id")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Writes the entries (insert or update), bumps the tenant's catalog version and announces it.
/// Returns the new version.
pub async fn upsert(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
    entries: &[CatalogEntry],
) -> Result<i64, DbError> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO catalog_versions (tenant_id, version) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET version = catalog_versions.version + 1 RETURNING version",
    )
    .bind(tenant_id)
    .fetch_one(&mut *conn)
    .await?;
    if !entries.is_empty() {
        let skus: Vec<&str> = entries.iter().map(|e| e.sku.as_str()).collect();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let attributes: Vec<serde_json::Value> =
            entries.iter().map(|e| serde_json::to_value(&e.attributes).unwrap_or_default()).collect();
        let prices: Vec<i64> = entries.iter().map(|e| e.price.amount_minor).collect();
        let currencies: Vec<&str> = entries.iter().map(|e| e.price.currency.code()).collect();
        let active: Vec<bool> = entries.iter().map(|e| e.active).collect();
        let retailer_ids: Vec<Option<&str>> = entries.iter().map(|e| e.retailer_id.as_deref()).collect();
        let product_ids: Vec<Option<&str>> = entries.iter().map(|e| e.product_id.as_deref()).collect();
        sqlx::query(
            "INSERT INTO catalog_items (tenant_id, sku, name, attributes, price_minor, currency, active, retailer_id, product_id, version)
             SELECT $1, * , $10 FROM UNNEST($2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::text[], $7::bool[], $8::text[], $9::text[])
             ON CONFLICT (tenant_id, sku) DO UPDATE SET
               name = EXCLUDED.name, attributes = EXCLUDED.attributes, price_minor = EXCLUDED.price_minor,
               currency = EXCLUDED.currency, active = EXCLUDED.active, retailer_id = EXCLUDED.retailer_id,
               product_id = EXCLUDED.product_id, version = EXCLUDED.version, updated_at = now()",
        )
        .bind(tenant_id)
        .bind(&skus)
        .bind(&names)
        .bind(&attributes)
        .bind(&prices)
        .bind(&currencies)
        .bind(&active)
        .bind(&retailer_ids)
        .bind(&product_ids)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    }
    const MAX_SKUS: usize = 1000;
    let event = CatalogChanged {
        catalog_version: version,
        skus: entries.iter().take(MAX_SKUS).map(|e| e.sku.as_str().to_string()).collect(),
        truncated: entries.len() > MAX_SKUS,
    };
    bus::outbox::enqueue(conn, namespace, Envelope::new(tenant_id, format!("catalog:{tenant_id}"), event, None))
        .await?;
    Ok(version)
}

pub async fn version(conn: &mut PgConnection, tenant_id: Uuid) -> Result<i64, DbError> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM catalog_versions WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(conn)
        .await?;
    Ok(version.unwrap_or(0))
}

pub async fn get(conn: &mut PgConnection, tenant_id: Uuid, sku: &Sku) -> Result<Option<StoredItem>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM catalog_items WHERE tenant_id = $1 AND sku = $2"))
        .bind(tenant_id)
        .bind(sku.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A page of the catalog in SKU order, after `after_sku`.
pub async fn page(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    after_sku: Option<&str>,
    limit: i64,
    include_inactive: bool,
) -> Result<Vec<StoredItem>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM catalog_items
         WHERE tenant_id = $1 AND ($2::text IS NULL OR sku > $2) AND ($3 OR active)
         ORDER BY sku LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(after_sku)
    .bind(include_inactive)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every active item of a tenant (the search index is built from it).
pub async fn all_active(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Vec<StoredItem>, DbError> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM catalog_items WHERE tenant_id = $1 AND active ORDER BY sku"))
            .bind(tenant_id)
            .fetch_all(conn)
            .await?;
    rows.iter().map(from_row).collect()
}
