//! Drafts in Postgres.

use money::{Currency, Money};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use crate::domain::draft::{Address, Customer, Item, Status, Totals};

#[derive(Debug, Clone, PartialEq)]
pub struct DraftRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: Status,
    pub source: String,
    pub customer: Customer,
    pub customer_key: String,
    pub shipping_address: Option<Address>,
    pub currency: Currency,
    pub items: Vec<Item>,
    pub totals: Totals,
    pub notes: String,
    pub version: i64,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub reservation_reference: Option<String>,
    pub order_id: Option<Uuid>,
    pub order_code: Option<String>,
    pub rejected_reason: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, status, source, customer, customer_key, shipping_address, currency, subtotal_minor,
    discount_minor, tax_minor, shipping_minor, total_minor, notes, version, expires_at, created_at, updated_at, lease_owner,
    lease_until, reservation_reference, order_id, order_code, rejected_reason";

pub(crate) fn from_row(row: &sqlx::postgres::PgRow) -> Result<DraftRecord, DbError> {
    let currency: String = row.try_get("currency")?;
    let currency: Currency = currency.parse().map_err(|_| DbError::Internal("bad currency in drafts row".into()))?;
    let money = |column: &str| -> Result<Money, DbError> { Ok(Money::new(row.try_get(column)?, currency)) };
    let status: String = row.try_get("status")?;
    let customer: serde_json::Value = row.try_get("customer")?;
    let address: Option<serde_json::Value> = row.try_get("shipping_address")?;
    Ok(DraftRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        status: Status::parse(&status).ok_or_else(|| DbError::Internal(format!("unknown draft status {status}")))?,
        source: row.try_get("source")?,
        customer: serde_json::from_value(customer).unwrap_or_default(),
        customer_key: row.try_get("customer_key")?,
        shipping_address: address.and_then(|a| serde_json::from_value(a).ok()),
        currency,
        items: Vec::new(),
        totals: Totals {
            subtotal: money("subtotal_minor")?,
            discount: money("discount_minor")?,
            tax: money("tax_minor")?,
            shipping: money("shipping_minor")?,
            total: money("total_minor")?,
        },
        notes: row.try_get("notes")?,
        version: row.try_get("version")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        reservation_reference: row.try_get("reservation_reference")?,
        order_id: row.try_get("order_id")?,
        order_code: row.try_get("order_code")?,
        rejected_reason: row.try_get("rejected_reason")?,
    })
}

async fn load_items(conn: &mut PgConnection, draft: &mut DraftRecord) -> Result<(), DbError> {
    let currency = draft.currency;
    let rows: Vec<(String, Option<String>, String, i64, Option<i64>, Option<i64>, f32)> = sqlx::query_as(
        "SELECT original_text, sku, name, quantity, unit_price_minor, message_price_minor, confidence
         FROM draft_items WHERE draft_id = $1 ORDER BY position",
    )
    .bind(draft.id)
    .fetch_all(conn)
    .await?;
    draft.items = rows
        .into_iter()
        .map(|(original_text, sku, name, quantity, unit, message, confidence)| Item {
            original_text,
            sku,
            name,
            quantity,
            unit_price: unit.map(|a| Money::new(a, currency)),
            message_price: message.map(|a| Money::new(a, currency)),
            confidence,
        })
        .collect();
    Ok(())
}

pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<DraftRecord>, DbError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM drafts WHERE tenant_id = $1 AND id = $2{lock}"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut draft = from_row(&row)?;
    load_items(conn, &mut draft).await?;
    Ok(Some(draft))
}

/// The customer's draft still waiting for review, locked.
pub async fn open_for_customer(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    customer_key: &str,
) -> Result<Option<DraftRecord>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE tenant_id = $1 AND customer_key = $2 AND status = 'pending_review' FOR UPDATE"
    ))
    .bind(tenant_id)
    .bind(customer_key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut draft = from_row(&row)?;
    load_items(conn, &mut draft).await?;
    Ok(Some(draft))
}

async fn write_items(conn: &mut PgConnection, draft_id: Uuid, items: &[Item]) -> Result<(), DbError> {
    sqlx::query("DELETE FROM draft_items WHERE draft_id = $1").bind(draft_id).execute(&mut *conn).await?;
    if items.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (1..=items.len() as i32).collect();
    let texts: Vec<&str> = items.iter().map(|i| i.original_text.as_str()).collect();
    let skus: Vec<Option<&str>> = items.iter().map(|i| i.sku.as_deref()).collect();
    let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    let quantities: Vec<i64> = items.iter().map(|i| i.quantity).collect();
    let prices: Vec<Option<i64>> = items.iter().map(|i| i.unit_price.map(|p| p.amount_minor)).collect();
    let message_prices: Vec<Option<i64>> = items.iter().map(|i| i.message_price.map(|p| p.amount_minor)).collect();
    let confidences: Vec<f32> = items.iter().map(|i| i.confidence).collect();
    sqlx::query(
        "INSERT INTO draft_items (draft_id, position, original_text, sku, name, quantity, unit_price_minor, message_price_minor, confidence)
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::real[])",
    )
    .bind(draft_id)
    .bind(&positions)
    .bind(&texts)
    .bind(&skus)
    .bind(&names)
    .bind(&quantities)
    .bind(&prices)
    .bind(&message_prices)
    .bind(&confidences)
    .execute(conn)
    .await?;
    Ok(())
}

fn search_text(customer: &Customer) -> String {
    format!(
        "{} {} {}",
        customer.name,
        customer.phone_e164.as_deref().unwrap_or_default(),
        customer.channel_customer_id.as_deref().unwrap_or_default()
    )
    .to_lowercase()
}

pub async fn insert(conn: &mut PgConnection, draft: &DraftRecord) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO drafts (id, tenant_id, status, source, customer, customer_key, customer_search, shipping_address, currency,
            subtotal_minor, discount_minor, tax_minor, shipping_minor, total_minor, notes, version, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(draft.id)
    .bind(draft.tenant_id)
    .bind(draft.status.as_str())
    .bind(&draft.source)
    .bind(serde_json::to_value(&draft.customer).unwrap_or_default())
    .bind(&draft.customer_key)
    .bind(search_text(&draft.customer))
    .bind(draft.shipping_address.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()))
    .bind(draft.currency.code())
    .bind(draft.totals.subtotal.amount_minor)
    .bind(draft.totals.discount.amount_minor)
    .bind(draft.totals.tax.amount_minor)
    .bind(draft.totals.shipping.amount_minor)
    .bind(draft.totals.total.amount_minor)
    .bind(&draft.notes)
    .bind(draft.version)
    .bind(draft.expires_at)
    .execute(&mut *conn)
    .await?;
    write_items(conn, draft.id, &draft.items).await
}

/// Writes a changed draft (items, totals, customer, address, notes) and bumps its version.
pub async fn save(conn: &mut PgConnection, draft: &mut DraftRecord) -> Result<(), DbError> {
    draft.version = sqlx::query_scalar(
        "UPDATE drafts SET customer = $2, customer_search = $3, shipping_address = $4, subtotal_minor = $5, discount_minor = $6,
           tax_minor = $7, shipping_minor = $8, total_minor = $9, notes = $10, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING version",
    )
    .bind(draft.id)
    .bind(serde_json::to_value(&draft.customer).unwrap_or_default())
    .bind(search_text(&draft.customer))
    .bind(draft.shipping_address.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()))
    .bind(draft.totals.subtotal.amount_minor)
    .bind(draft.totals.discount.amount_minor)
    .bind(draft.totals.tax.amount_minor)
    .bind(draft.totals.shipping.amount_minor)
    .bind(draft.totals.total.amount_minor)
    .bind(&draft.notes)
    .fetch_one(&mut *conn)
    .await?;
    write_items(conn, draft.id, &draft.items).await
}

/// Marks a pending draft as being approved by `owner` until the lease ends.
pub async fn begin_approval(
    conn: &mut PgConnection,
    id: Uuid,
    owner: &str,
    lease: std::time::Duration,
    reference: &str,
    approved_by: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE drafts SET status = 'approving', lease_owner = $2, lease_until = now() + make_interval(secs => $3),
           reservation_reference = $4, approved_by = $5, approval_attempts = approval_attempts + 1, last_error = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(reference)
    .bind(approved_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Approving drafts whose lease ran out (their approver died), now leased to `owner`.
pub async fn take_expired_leases(
    conn: &mut PgConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE drafts SET lease_owner = $1, lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id IN (SELECT id FROM drafts WHERE status = 'approving' AND lease_until < now()
                      ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING tenant_id, id",
    )
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Whether `owner` still holds the approval of a draft (locked).
pub async fn holds_lease(conn: &mut PgConnection, id: Uuid, owner: &str) -> Result<bool, DbError> {
    let held: Option<bool> =
        sqlx::query_scalar("SELECT status = 'approving' AND lease_owner = $2 FROM drafts WHERE id = $1 FOR UPDATE")
            .bind(id)
            .bind(owner)
            .fetch_optional(conn)
            .await?;
    Ok(held.unwrap_or(false))
}

pub async fn finish_approval(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
    order_code: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE drafts SET status = 'approved', order_id = $2, order_code = $3, lease_owner = NULL, lease_until = NULL,
           version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(order_id)
    .bind(order_code)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns a draft whose approval failed to review, with why.
pub async fn abort_approval(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE drafts SET status = 'pending_review', lease_owner = NULL, lease_until = NULL, last_error = $2, updated_at = now()
         WHERE id = $1 AND status = 'approving'",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn reject(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE drafts SET status = 'rejected', rejected_reason = $2, version = version + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Expires due pending drafts (never one being approved); returns (tenant, id) of each.
pub async fn expire_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<(Uuid, Uuid)>, DbError> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE drafts SET status = 'expired', version = version + 1, updated_at = now()
         WHERE id IN (SELECT id FROM drafts WHERE status = 'pending_review' AND expires_at < now()
                      ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING tenant_id, id",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<Status>,
    pub source: Option<String>,
    pub customer: Option<String>,
    pub max_age_minutes: Option<i64>,
}

/// Newest first, keyset-paginated by (created_at, id).
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    filter: &Filter,
    limit: i64,
    after: Option<(OffsetDateTime, Uuid)>,
) -> Result<Vec<DraftRecord>, DbError> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM drafts WHERE tenant_id = "));
    query.push_bind(tenant_id);
    if !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query.push(" AND status = ANY(").push_bind(statuses).push(")");
    }
    if let Some(source) = &filter.source {
        query.push(" AND source = ").push_bind(source.clone());
    }
    if let Some(customer) = &filter.customer {
        let escaped = customer.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        query.push(" AND customer_search LIKE ").push_bind(format!("%{escaped}%"));
    }
    if let Some(minutes) = filter.max_age_minutes {
        query.push(" AND created_at >= now() - make_interval(mins => ").push_bind(minutes as i32).push(")");
    }
    if let Some((at, id)) = after {
        query.push(" AND (created_at, id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(&mut *conn).await?;
    let mut drafts: Vec<DraftRecord> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    for draft in &mut drafts {
        load_items(conn, draft).await?;
    }
    Ok(drafts)
}

/// Whether this message, or the same text from the same customer lately, was already seen.
pub async fn seen_message(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    message_key: &str,
    customer_key: &str,
    text_hash: &str,
    window: std::time::Duration,
) -> Result<bool, DbError> {
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM draft_messages WHERE tenant_id = $1 AND message_key = $2)
             OR EXISTS (SELECT 1 FROM draft_messages WHERE tenant_id = $1 AND customer_key = $3 AND text_hash = $4
                        AND received_at > now() - make_interval(secs => $5))",
    )
    .bind(tenant_id)
    .bind(message_key)
    .bind(customer_key)
    .bind(text_hash)
    .bind(window.as_secs_f64())
    .fetch_one(conn)
    .await?;
    Ok(seen)
}

pub async fn record_message(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    message_key: &str,
    customer_key: &str,
    text_hash: &str,
    draft_id: Option<Uuid>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO draft_messages (tenant_id, message_key, customer_key, text_hash, draft_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(message_key)
    .bind(customer_key)
    .bind(text_hash)
    .bind(draft_id)
    .execute(conn)
    .await?;
    Ok(())
}
