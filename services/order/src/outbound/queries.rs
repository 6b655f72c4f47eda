//! Finding orders: filtered, searched, keyset-paginated lists and summary figures.
//!
//! Pagination is by key (the sort value and the id), never by offset, so a page neither skips
//! nor repeats rows while new orders arrive.

use std::collections::HashMap;

use events::order::OrderSource;
use money::Money;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::orders::{COLUMNS, OrderRecord, from_row};
use crate::domain::lifecycle::Status;
use crate::domain::payments::PaymentStatus;
use crate::domain::totals::Line;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<Status>,
    pub payment_statuses: Vec<PaymentStatus>,
    pub source: Option<OrderSource>,
    pub created_from: Option<OffsetDateTime>,
    pub created_to: Option<OffsetDateTime>,
    pub search: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    CreatedDesc,
    CreatedAsc,
    TotalDesc,
    TotalAsc,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Created(OffsetDateTime, Uuid),
    Total(i64, Uuid),
}

impl Cursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        let text = match self {
            Cursor::Created(at, id) => format!("c:{}:{id}", at.unix_timestamp_nanos()),
            Cursor::Total(total, id) => format!("t:{total}:{id}"),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(token: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        let (kind, value, id) = (parts.next()?, parts.next()?, parts.next()?);
        let id: Uuid = id.parse().ok()?;
        match kind {
            "c" => Some(Cursor::Created(OffsetDateTime::from_unix_timestamp_nanos(value.parse().ok()?).ok()?, id)),
            "t" => Some(Cursor::Total(value.parse().ok()?, id)),
            _ => None,
        }
    }

    fn of(order: &OrderRecord, sort: Sort) -> Self {
        match sort {
            Sort::CreatedDesc | Sort::CreatedAsc => Cursor::Created(order.created_at, order.id),
            Sort::TotalDesc | Sort::TotalAsc => Cursor::Total(order.totals.total.amount_minor, order.id),
        }
    }
}

fn push_filter(query: &mut QueryBuilder<'_, Postgres>, tenant_id: Uuid, filter: &Filter) {
    query.push(" WHERE tenant_id = ").push_bind(tenant_id);
    if !filter.statuses.is_empty() {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query.push(" AND status = ANY(").push_bind(statuses).push(")");
    }
    if !filter.payment_statuses.is_empty() {
        let statuses: Vec<&str> = filter.payment_statuses.iter().map(|s| s.as_str()).collect();
        query.push(" AND payment_status = ANY(").push_bind(statuses).push(")");
    }
    if let Some(source) = filter.source {
        query.push(" AND source = ").push_bind(if source == OrderSource::Draft { "draft" } else { "tiktok_shop" });
    }
    if let Some(from) = filter.created_from {
        query.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.created_to {
        query.push(" AND created_at < ").push_bind(to);
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let escaped = search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        query.push(" AND search_text LIKE ").push_bind(format!("%{escaped}%"));
    }
}

/// One page of orders (with their lines) and the cursor of the next page, if any.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    filter: &Filter,
    sort: Sort,
    limit: i64,
    after: Option<&Cursor>,
) -> Result<(Vec<OrderRecord>, Option<Cursor>), DbError> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM orders"));
    push_filter(&mut query, tenant_id, filter);
    match (after, sort) {
        (Some(Cursor::Created(at, id)), Sort::CreatedDesc) => {
            query.push(" AND (created_at, id) < (").push_bind(*at).push(", ").push_bind(*id).push(")");
        }
        (Some(Cursor::Created(at, id)), Sort::CreatedAsc) => {
            query.push(" AND (created_at, id) > (").push_bind(*at).push(", ").push_bind(*id).push(")");
        }
        (Some(Cursor::Total(total, id)), Sort::TotalDesc) => {
            query.push(" AND (total_minor, id) < (").push_bind(*total).push(", ").push_bind(*id).push(")");
        }
        (Some(Cursor::Total(total, id)), Sort::TotalAsc) => {
            query.push(" AND (total_minor, id) > (").push_bind(*total).push(", ").push_bind(*id).push(")");
        }
        (Some(_), _) => return Err(DbError::Internal("cursor does not match the sort".into())),
        (None, _) => {}
    }
    query.push(match sort {
        Sort::CreatedDesc => " ORDER BY created_at DESC, id DESC",
        Sort::CreatedAsc => " ORDER BY created_at ASC, id ASC",
        Sort::TotalDesc => " ORDER BY total_minor DESC, id DESC",
        Sort::TotalAsc => " ORDER BY total_minor ASC, id ASC",
    });
    query.push(" LIMIT ").push_bind(limit + 1);
    let rows = query.build().fetch_all(&mut *conn).await?;
    let mut orders: Vec<OrderRecord> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders.last().map(|o| Cursor::of(o, sort))
    } else {
        None
    };
    load_lines_of(conn, &mut orders).await?;
    Ok((orders, next))
}

async fn load_lines_of(conn: &mut PgConnection, orders: &mut [OrderRecord]) -> Result<(), DbError> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let rows: Vec<(Uuid, Option<String>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT order_id, sku, name, unit_price_minor, quantity, line_total_minor FROM order_items
         WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    // (sku, name, unit price, quantity, line total) of each order
    type LineColumns = (Option<String>, String, i64, i64, i64);
    let mut by_order: HashMap<Uuid, Vec<LineColumns>> = HashMap::new();
    for (order_id, sku, name, unit, quantity, total) in rows {
        by_order.entry(order_id).or_default().push((sku, name, unit, quantity, total));
    }
    for order in orders {
        let currency = order.totals.total.currency;
        order.lines = by_order
            .remove(&order.id)
            .unwrap_or_default()
            .into_iter()
            .map(|(sku, name, unit, quantity, total)| Line {
                sku,
                name,
                unit_price: Money::new(unit, currency),
                quantity,
                line_total: Money::new(total, currency),
            })
            .collect();
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub count: i64,
    pub totals: Vec<(String, i64)>,
    pub by_status: Vec<(Status, i64)>,
}

/// Count, total amount per currency and per-status counts for the same filters as `list`.
pub async fn summary(conn: &mut PgConnection, tenant_id: Uuid, filter: &Filter) -> Result<Summary, DbError> {
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT status, currency, count(*), coalesce(sum(total_minor), 0)::bigint FROM orders",
    );
    push_filter(&mut query, tenant_id, filter);
    query.push(" GROUP BY status, currency");
    let rows: Vec<(String, String, i64, i64)> = query.build_query_as().fetch_all(conn).await?;
    let mut summary = Summary::default();
    let mut totals: HashMap<String, i64> = HashMap::new();
    let mut by_status: HashMap<Status, i64> = HashMap::new();
    for (status, currency, count, total) in rows {
        summary.count += count;
        *totals.entry(currency).or_default() += total;
        if let Some(status) = Status::parse(&status) {
            *by_status.entry(status).or_default() += count;
        }
    }
    summary.totals = totals.into_iter().collect();
    summary.totals.sort();
    summary.by_status = by_status.into_iter().collect();
    summary.by_status.sort();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::new_v4();
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_000).expect("time");
        for cursor in [Cursor::Created(at, id), Cursor::Total(1299, id)] {
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(Cursor::decode("not-a-cursor"), None);
    }
}
