//! Writing new orders, one or a whole batch at a time: one statement inserts the orders
//! (idempotent per source id) with their lines, history and audit rows and their
//! `order.created` events. The order returned is built from what was written, not read back.

use std::collections::{BTreeMap, HashMap};

use bus::outbox::{Columns, OutboxRow};
use bus::{Envelope, Namespace};
use events::order::OrderCreated;
use serde_json::json;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::orders::{self, Actor, NewOrder, OrderRecord, source_str};
use crate::domain::parties::search_text;

/// One order to write, with the code taken for it.
pub struct Creation<'a> {
    pub code: String,
    pub new: &'a NewOrder,
    pub actor: &'a Actor,
    /// The W3C trace context of the request that asked for it (a committer runs outside the
    /// request's span); `None`: the current span's.
    pub trace: Option<&'a BTreeMap<String, String>>,
}

/// Inserts every order whose source id has no order yet. Returns, in the order given, each
/// order and whether it is new; an order that already existed (a retry, a concurrent duplicate,
/// the same source id twice in `creations`) is returned as stored and its code is left unused.
pub async fn insert(
    conn: &mut PgConnection,
    namespace: &Namespace,
    creations: &[Creation<'_>],
) -> Result<Vec<(OrderRecord, bool)>, DbError> {
    if creations.is_empty() {
        return Ok(Vec::new());
    }
    // Rows are inserted in key order, so two batches holding the same keys wait for each other
    // instead of deadlocking on the unique index.
    let mut order: Vec<usize> = (0..creations.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (creations[a].new, creations[b].new);
        (a.tenant_id, source_str(a.source), &a.source_id).cmp(&(b.tenant_id, source_str(b.source), &b.source_id))
    });
    let ids: Vec<Uuid> = creations.iter().map(|_| Uuid::now_v7()).collect();
    // Each order and its event are built before the insert: the statement writes the event of
    // every order it inserted, and no other.
    let now = OffsetDateTime::now_utc();
    let mut records = Vec::with_capacity(creations.len());
    let mut events = Vec::with_capacity(creations.len());
    for (creation, id) in creations.iter().zip(&ids) {
        let order = record(creation, *id, now);
        events.push((*id, order_created(namespace, creation, &order)?));
        records.push(order);
    }
    let rows = Rows::of(creations, &ids, &order);
    let events = Columns::owned(&events);
    let statement = format!(
        "{INSERT}, new_events AS ({})\nSELECT id, created_at, updated_at FROM new_orders",
        events.insert_where(32, "WHERE e.owner IN (SELECT id FROM new_orders)")
    );
    let query = rows.bind(sqlx::query(&statement));
    let inserted: HashMap<Uuid, (OffsetDateTime, OffsetDateTime)> = events
        .bind(query)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("id")?, (row.try_get("created_at")?, row.try_get("updated_at")?))))
        .collect::<Result<_, sqlx::Error>>()?;

    let mut results = Vec::with_capacity(creations.len());
    for (creation, mut order) in creations.iter().zip(records) {
        let new = creation.new;
        let Some(&(created_at, updated_at)) = inserted.get(&order.id) else {
            // The source id has an order: committed before, or inserted just now by another
            // transaction (whose commit the insert waited for) or earlier in this batch.
            let existing = orders::by_source(conn, new.tenant_id, new.source, &new.source_id, false)
                .await?
                .ok_or_else(|| DbError::Internal("order vanished after a conflict".into()))?;
            results.push((existing, false));
            continue;
        };
        order.created_at = created_at;
        order.updated_at = updated_at;
        results.push((order, true));
    }
    Ok(results)
}

/// The order as `creation` writes it (`at` stands in for the times the insert sets).
fn record(creation: &Creation<'_>, id: Uuid, at: OffsetDateTime) -> OrderRecord {
    let new = creation.new;
    OrderRecord {
        id,
        tenant_id: new.tenant_id,
        code: creation.code.clone(),
        status: new.status,
        payment_status: new.payment_status,
        source: new.source,
        source_id: new.source_id.clone(),
        reservation_reference: new.reservation_reference.clone(),
        lines: new.lines.clone(),
        totals: new.totals.clone(),
        paid_minor: 0,
        refunded_minor: 0,
        customer: new.customer.clone(),
        shipping_address: new.shipping_address.clone(),
        notes: new.notes.clone(),
        tags: Vec::new(),
        attention: new.attention.clone(),
        platform_update_time: new.platform_update_time,
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

/// The `order.created` event of a new order.
fn order_created(namespace: &Namespace, creation: &Creation<'_>, order: &OrderRecord) -> Result<OutboxRow, DbError> {
    let new = creation.new;
    let event = OrderCreated {
        order_id: order.id.to_string(),
        order_code: order.code.clone(),
        source: new.source,
        source_id: new.source_id.clone(),
        status: new.status.as_str().to_string(),
        reservation_reference: new.reservation_reference.clone(),
        reservation_held: new.reservation_held,
        items: order.event_lines(),
        currency: order.totals.total.currency.code().to_string(),
        total_minor: order.totals.total.amount_minor,
    };
    let mut envelope = Envelope::new(new.tenant_id, format!("order:{}", order.id), event, None);
    if let Some(trace) = creation.trace {
        envelope.trace = trace.clone();
    }
    OutboxRow::for_event(namespace, envelope).map_err(DbError::from)
}

/// The orders, their lines and their history and audit rows: the CTEs of one statement, which
/// [`insert`] completes with the events. A child row is written only when its order was (the
/// `ON CONFLICT` skipped the others); foreign keys are checked at the end of the statement, when
/// the orders are in.
const INSERT: &str = "
WITH new_orders AS (
    INSERT INTO orders (id, tenant_id, code, status, payment_status, source, source_id, reservation_reference,
        currency, subtotal_minor, discount_minor, tax_minor, shipping_minor, total_minor, customer, shipping_address,
        notes, attention, platform_update_time, search_text)
    SELECT o.id, o.tenant_id, o.code, o.status, o.payment_status, o.source, o.source_id, o.reservation_reference,
        o.currency, o.subtotal, o.discount, o.tax, o.shipping, o.total, o.customer, o.address,
        o.notes, ARRAY(SELECT jsonb_array_elements_text(o.attention)), o.platform_update_time, o.search_text
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
        $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::jsonb[],
        $16::jsonb[], $17::text[], $18::jsonb[], $19::bigint[], $20::text[])
        AS o(id, tenant_id, code, status, payment_status, source, source_id, reservation_reference,
        currency, subtotal, discount, tax, shipping, total, customer, address,
        notes, attention, platform_update_time, search_text)
    ON CONFLICT (tenant_id, source, source_id) DO NOTHING
    RETURNING id, created_at, updated_at
), new_items AS (
    INSERT INTO order_items (order_id, position, sku, name, unit_price_minor, quantity, line_total_minor)
    SELECT i.order_id, i.position, i.sku, i.name, i.unit, i.quantity, i.total
    FROM UNNEST($25::uuid[], $26::int[], $27::text[], $28::text[], $29::bigint[], $30::bigint[], $31::bigint[])
        AS i(order_id, position, sku, name, unit, quantity, total)
    WHERE i.order_id IN (SELECT id FROM new_orders)
), new_history AS (
    INSERT INTO status_history (order_id, from_status, to_status, reason, actor_user, actor_service, source)
    SELECT h.order_id, NULL, h.status, 'created', h.actor_user, h.actor_service, h.source
    FROM UNNEST($1::uuid[], $4::text[], $21::text[], $22::text[], $23::text[])
        AS h(order_id, status, actor_user, actor_service, source)
    WHERE h.order_id IN (SELECT id FROM new_orders)
), new_audit AS (
    INSERT INTO audit_log (order_id, action, changes, actor_user, actor_service)
    SELECT a.order_id, 'created', a.changes, a.actor_user, a.actor_service
    FROM UNNEST($1::uuid[], $24::jsonb[], $21::text[], $22::text[]) AS a(order_id, changes, actor_user, actor_service)
    WHERE a.order_id IN (SELECT id FROM new_orders)
)";

/// The statement's arrays: one entry per order (per line for `item_*`), in key order.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    codes: Vec<&'a str>,
    statuses: Vec<&'static str>,
    payment_statuses: Vec<&'static str>,
    sources: Vec<&'static str>,
    source_ids: Vec<&'a str>,
    reservations: Vec<&'a str>,
    currencies: Vec<&'a str>,
    subtotals: Vec<i64>,
    discounts: Vec<i64>,
    taxes: Vec<i64>,
    shippings: Vec<i64>,
    totals: Vec<i64>,
    customers: Vec<serde_json::Value>,
    addresses: Vec<Option<serde_json::Value>>,
    notes: Vec<&'a str>,
    attention: Vec<serde_json::Value>,
    platform_update_times: Vec<Option<i64>>,
    search_texts: Vec<String>,
    actor_users: Vec<Option<&'a str>>,
    actor_services: Vec<Option<&'a str>>,
    change_sources: Vec<&'static str>,
    audit_changes: Vec<serde_json::Value>,
    item_orders: Vec<Uuid>,
    item_positions: Vec<i32>,
    item_skus: Vec<Option<&'a str>>,
    item_names: Vec<&'a str>,
    item_units: Vec<i64>,
    item_quantities: Vec<i64>,
    item_totals: Vec<i64>,
}

impl<'a> Rows<'a> {
    fn of(creations: &'a [Creation<'_>], ids: &[Uuid], order: &[usize]) -> Self {
        let mut rows = Rows::default();
        for &index in order {
            let creation = &creations[index];
            let (code, new, actor) = (creation.code.as_str(), creation.new, creation.actor);
            let id = ids[index];
            rows.ids.push(id);
            rows.tenants.push(new.tenant_id);
            rows.codes.push(code);
            rows.statuses.push(new.status.as_str());
            rows.payment_statuses.push(new.payment_status.as_str());
            rows.sources.push(source_str(new.source));
            rows.source_ids.push(&new.source_id);
            rows.reservations.push(&new.reservation_reference);
            rows.currencies.push(new.totals.total.currency.code());
            rows.subtotals.push(new.totals.subtotal.amount_minor);
            rows.discounts.push(new.totals.discount.amount_minor);
            rows.taxes.push(new.totals.tax.amount_minor);
            rows.shippings.push(new.totals.shipping.amount_minor);
            rows.totals.push(new.totals.total.amount_minor);
            rows.customers.push(serde_json::to_value(&new.customer).unwrap_or_default());
            rows.addresses.push(new.shipping_address.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()));
            rows.notes.push(&new.notes);
            rows.attention.push(json!(new.attention));
            rows.platform_update_times.push(new.platform_update_time);
            rows.search_texts.push(search_text(code, &new.customer));
            rows.actor_users.push(actor.user.as_deref());
            rows.actor_services.push(actor.service.as_deref());
            rows.change_sources.push(actor.source.as_str());
            rows.audit_changes.push(json!({ "source": source_str(new.source), "source_id": new.source_id }));
            for (position, line) in (1..).zip(&new.lines) {
                rows.item_orders.push(id);
                rows.item_positions.push(position);
                rows.item_skus.push(line.sku.as_deref());
                rows.item_names.push(&line.name);
                rows.item_units.push(line.unit_price.amount_minor);
                rows.item_quantities.push(line.quantity);
                rows.item_totals.push(line.line_total.amount_minor);
            }
        }
        rows
    }

    /// Binds the arrays as `$1` to `$31`, as [`INSERT`] numbers them.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.ids)
            .bind(self.tenants)
            .bind(self.codes)
            .bind(self.statuses)
            .bind(self.payment_statuses)
            .bind(self.sources)
            .bind(self.source_ids)
            .bind(self.reservations)
            .bind(self.currencies)
            .bind(self.subtotals)
            .bind(self.discounts)
            .bind(self.taxes)
            .bind(self.shippings)
            .bind(self.totals)
            .bind(self.customers)
            .bind(self.addresses)
            .bind(self.notes)
            .bind(self.attention)
            .bind(self.platform_update_times)
            .bind(self.search_texts)
            .bind(self.actor_users)
            .bind(self.actor_services)
            .bind(self.change_sources)
            .bind(self.audit_changes)
            .bind(self.item_orders)
            .bind(self.item_positions)
            .bind(self.item_skus)
            .bind(self.item_names)
            .bind(self.item_units)
            .bind(self.item_quantities)
            .bind(self.item_totals)
    }
}
