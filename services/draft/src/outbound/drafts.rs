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
    load_items_of(conn, std::slice::from_mut(draft)).await
}

/// Loads the items of several drafts in one query.
pub(crate) async fn load_items_of(conn: &mut PgConnection, drafts: &mut [DraftRecord]) -> Result<(), DbError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = drafts.iter().map(|d| d.id).collect();
    type ItemRow = (Uuid, String, Option<String>, String, i64, Option<i64>, Option<i64>, f32);
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT draft_id, original_text, sku, name, quantity, unit_price_minor, message_price_minor, confidence
         FROM draft_items WHERE draft_id = ANY($1) ORDER BY draft_id, position",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let index: std::collections::HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    for draft in drafts.iter_mut() {
        draft.items.clear();
    }
    for (draft_id, original_text, sku, name, quantity, unit, message, confidence) in rows {
        let Some(&i) = index.get(&draft_id) else { continue };
        let currency = drafts[i].currency;
        drafts[i].items.push(Item {
            original_text,
            sku,
            name,
            quantity,
            unit_price: unit.map(|a| Money::new(a, currency)),
            message_price: message.map(|a| Money::new(a, currency)),
            confidence,
        });
    }
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
    Ok(open_for_customers(conn, &[(tenant_id, customer_key)]).await?.pop())
}

/// The drafts still waiting for review of several customers (tenant, customer key), locked, in
/// one query for the drafts and one for their items. Customers without one are left out.
pub async fn open_for_customers(
    conn: &mut PgConnection,
    customers: &[(Uuid, &str)],
) -> Result<Vec<DraftRecord>, DbError> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<Uuid> = customers.iter().map(|(t, _)| *t).collect();
    let keys: Vec<&str> = customers.iter().map(|(_, k)| *k).collect();
    // One index probe per customer (a lateral subquery cannot become a hash join over the table).
    let rows = sqlx::query(&format!(
        "SELECT d.* FROM unnest($1::uuid[], $2::text[]) AS k(tenant_id, customer_key)
         CROSS JOIN LATERAL (SELECT {COLUMNS} FROM drafts
                             WHERE tenant_id = k.tenant_id AND customer_key = k.customer_key AND status = 'pending_review'
                             FOR UPDATE) d"
    ))
    .bind(&tenants)
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    let mut drafts: Vec<DraftRecord> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    load_items_of(conn, &mut drafts).await?;
    Ok(drafts)
}

async fn write_items(conn: &mut PgConnection, draft_id: Uuid, items: &[Item]) -> Result<(), DbError> {
    sqlx::query("DELETE FROM draft_items WHERE draft_id = $1").bind(draft_id).execute(&mut *conn).await?;
    insert_items(conn, &[(draft_id, items)]).await
}

/// The items of several drafts in one statement.
async fn insert_items(conn: &mut PgConnection, drafts: &[(Uuid, &[Item])]) -> Result<(), DbError> {
    let rows: Vec<(Uuid, i32, &Item)> = drafts
        .iter()
        .flat_map(|(id, items)| items.iter().zip(1..).map(move |(item, position)| (*id, position, item)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let draft_ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    let positions: Vec<i32> = rows.iter().map(|(_, p, _)| *p).collect();
    let texts: Vec<&str> = rows.iter().map(|(_, _, i)| i.original_text.as_str()).collect();
    let skus: Vec<Option<&str>> = rows.iter().map(|(_, _, i)| i.sku.as_deref()).collect();
    let names: Vec<&str> = rows.iter().map(|(_, _, i)| i.name.as_str()).collect();
    let quantities: Vec<i64> = rows.iter().map(|(_, _, i)| i.quantity).collect();
    let prices: Vec<Option<i64>> = rows.iter().map(|(_, _, i)| i.unit_price.map(|p| p.amount_minor)).collect();
    let message_prices: Vec<Option<i64>> =
        rows.iter().map(|(_, _, i)| i.message_price.map(|p| p.amount_minor)).collect();
    let confidences: Vec<f32> = rows.iter().map(|(_, _, i)| i.confidence).collect();
    sqlx::query(
        "INSERT INTO draft_items (draft_id, position, original_text, sku, name, quantity, unit_price_minor, message_price_minor, confidence)
         SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::real[])",
    )
    .bind(&draft_ids)
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
    insert_many(conn, &[draft]).await
}

/// New drafts and their items, in one statement each whatever their number.
pub async fn insert_many(conn: &mut PgConnection, drafts: &[&DraftRecord]) -> Result<(), DbError> {
    if drafts.is_empty() {
        return Ok(());
    }
    let json = |value: Result<serde_json::Value, serde_json::Error>| value.unwrap_or_default();
    let ids: Vec<Uuid> = drafts.iter().map(|d| d.id).collect();
    let tenants: Vec<Uuid> = drafts.iter().map(|d| d.tenant_id).collect();
    let statuses: Vec<&str> = drafts.iter().map(|d| d.status.as_str()).collect();
    let sources: Vec<&str> = drafts.iter().map(|d| d.source.as_str()).collect();
    let customers: Vec<serde_json::Value> = drafts.iter().map(|d| json(serde_json::to_value(&d.customer))).collect();
    let customer_keys: Vec<&str> = drafts.iter().map(|d| d.customer_key.as_str()).collect();
    let searches: Vec<String> = drafts.iter().map(|d| search_text(&d.customer)).collect();
    let addresses: Vec<Option<serde_json::Value>> =
        drafts.iter().map(|d| d.shipping_address.as_ref().map(|a| json(serde_json::to_value(a)))).collect();
    let currencies: Vec<&str> = drafts.iter().map(|d| d.currency.code()).collect();
    let money = |f: fn(&Totals) -> Money| -> Vec<i64> { drafts.iter().map(|d| f(&d.totals).amount_minor).collect() };
    let notes: Vec<&str> = drafts.iter().map(|d| d.notes.as_str()).collect();
    let versions: Vec<i64> = drafts.iter().map(|d| d.version).collect();
    let expires: Vec<OffsetDateTime> = drafts.iter().map(|d| d.expires_at).collect();
    sqlx::query(
        "INSERT INTO drafts (id, tenant_id, status, source, customer, customer_key, customer_search, shipping_address, currency,
            subtotal_minor, discount_minor, tax_minor, shipping_minor, total_minor, notes, version, expires_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[], $8::jsonb[],
            $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::bigint[],
            $17::timestamptz[])",
    )
    .bind(&ids)
    .bind(&tenants)
    .bind(&statuses)
    .bind(&sources)
    .bind(&customers)
    .bind(&customer_keys)
    .bind(&searches)
    .bind(&addresses)
    .bind(&currencies)
    .bind(money(|t| t.subtotal))
    .bind(money(|t| t.discount))
    .bind(money(|t| t.tax))
    .bind(money(|t| t.shipping))
    .bind(money(|t| t.total))
    .bind(&notes)
    .bind(&versions)
    .bind(&expires)
    .execute(&mut *conn)
    .await?;
    let items: Vec<(Uuid, &[Item])> = drafts.iter().map(|d| (d.id, d.items.as_slice())).collect();
    insert_items(conn, &items).await
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

/// A customer message that became, or was merged into, a draft.
#[derive(Debug, Clone, Copy)]
pub struct MessageRecord<'a> {
    pub tenant_id: Uuid,
    pub message_key: &'a str,
    pub customer_key: &'a str,
    pub text_hash: &'a str,
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
    let message = MessageRecord { tenant_id, message_key, customer_key, text_hash };
    Ok(seen_messages(conn, &[message], window).await?.first().copied().unwrap_or(false))
}

/// [`seen_message`] for several messages in one query; one answer per message, in order.
pub async fn seen_messages(
    conn: &mut PgConnection,
    messages: &[MessageRecord<'_>],
    window: std::time::Duration,
) -> Result<Vec<bool>, DbError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<Uuid> = messages.iter().map(|m| m.tenant_id).collect();
    let message_keys: Vec<&str> = messages.iter().map(|m| m.message_key).collect();
    let customer_keys: Vec<&str> = messages.iter().map(|m| m.customer_key).collect();
    let hashes: Vec<&str> = messages.iter().map(|m| m.text_hash).collect();
    let seen: Vec<bool> = sqlx::query_scalar(
        // Lateral subqueries: index probes per message, never a hashed scan of the whole table.
        "SELECT by_key.hit IS NOT NULL OR by_text.hit IS NOT NULL
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS m(tenant_id, message_key, customer_key, text_hash, i)
         LEFT JOIN LATERAL (SELECT 1 AS hit FROM draft_messages d
                            WHERE d.tenant_id = m.tenant_id AND d.message_key = m.message_key LIMIT 1) by_key ON true
         LEFT JOIN LATERAL (SELECT 1 AS hit FROM draft_messages d
                            WHERE d.tenant_id = m.tenant_id AND d.customer_key = m.customer_key AND d.text_hash = m.text_hash
                              AND d.received_at > now() - make_interval(secs => $5) LIMIT 1) by_text ON true
         ORDER BY m.i",
    )
    .bind(&tenants)
    .bind(&message_keys)
    .bind(&customer_keys)
    .bind(&hashes)
    .bind(window.as_secs_f64())
    .fetch_all(conn)
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
    record_messages(conn, &[(MessageRecord { tenant_id, message_key, customer_key, text_hash }, draft_id)]).await
}

/// [`record_message`] for several messages in one statement.
pub async fn record_messages(
    conn: &mut PgConnection,
    messages: &[(MessageRecord<'_>, Option<Uuid>)],
) -> Result<(), DbError> {
    if messages.is_empty() {
        return Ok(());
    }
    let tenants: Vec<Uuid> = messages.iter().map(|(m, _)| m.tenant_id).collect();
    let message_keys: Vec<&str> = messages.iter().map(|(m, _)| m.message_key).collect();
    let customer_keys: Vec<&str> = messages.iter().map(|(m, _)| m.customer_key).collect();
    let hashes: Vec<&str> = messages.iter().map(|(m, _)| m.text_hash).collect();
    let drafts: Vec<Option<Uuid>> = messages.iter().map(|(_, d)| *d).collect();
    sqlx::query(
        "INSERT INTO draft_messages (tenant_id, message_key, customer_key, text_hash, draft_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&tenants)
    .bind(&message_keys)
    .bind(&customer_keys)
    .bind(&hashes)
    .bind(&drafts)
    .execute(conn)
    .await?;
    Ok(())
}
