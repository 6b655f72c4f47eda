//! Orders in Postgres: creation (idempotent per source), transitions with history, audit and
//! events, payments, edits. Every change writes its status-history and audit rows and its
//! events (through the outbox) in the same transaction.

use bus::Namespace;
use events::order::{OrderLine, OrderSource};
use money::Money;
use serde_json::json;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::creation::{self, Creation};
use super::transitions::{self, Transition};
use crate::domain::lifecycle::{self, IllegalTransition, Status};
use crate::domain::parties::{Address, Customer};
use crate::domain::payments::{self, PaymentStatus};
use crate::domain::totals::{Line, Totals};

/// Where a change came from, for the history rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    User,
    System,
    TiktokShop,
}

impl ChangeSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeSource::User => "user",
            ChangeSource::System => "system",
            ChangeSource::TiktokShop => "tiktok_shop",
        }
    }
}

/// Who changed an order: the user when there is one, the service when one acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: Option<String>,
    pub service: Option<String>,
    pub source: ChangeSource,
    /// For a shipment: the tracking to pass on to the platform.
    pub tracking_number: Option<String>,
    pub shipping_provider_id: Option<String>,
}

impl Actor {
    pub fn system(reason: &str) -> Self {
        Self {
            user: None,
            service: Some(format!("order:{reason}")),
            source: ChangeSource::System,
            tracking_number: None,
            shipping_provider_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub code: String,
    pub status: Status,
    pub payment_status: PaymentStatus,
    pub source: OrderSource,
    pub source_id: String,
    pub reservation_reference: String,
    pub lines: Vec<Line>,
    pub totals: Totals,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub customer: Customer,
    pub shipping_address: Option<Address>,
    pub notes: String,
    pub tags: Vec<String>,
    pub attention: Vec<String>,
    pub platform_update_time: Option<i64>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl OrderRecord {
    pub(crate) fn event_lines(&self) -> Vec<OrderLine> {
        self.lines.iter().map(|l| OrderLine { sku: l.sku.clone(), quantity: l.quantity }).collect()
    }
}

pub struct NewOrder {
    pub tenant_id: Uuid,
    pub source: OrderSource,
    pub source_id: String,
    pub reservation_reference: String,
    pub reservation_held: bool,
    pub lines: Vec<Line>,
    pub totals: Totals,
    pub customer: Customer,
    pub shipping_address: Option<Address>,
    pub notes: String,
    pub attention: Vec<String>,
    pub status: Status,
    pub payment_status: PaymentStatus,
    pub platform_update_time: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeError {
    #[error("order not found")]
    NotFound,
    #[error("the order changed since version {expected} (now {actual})")]
    StaleVersion { expected: i64, actual: i64 },
    #[error("{0}")]
    Illegal(#[from] IllegalTransition),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(err: sqlx::Error) -> Self {
        ChangeError::Database(err.into())
    }
}

pub(crate) fn source_str(source: OrderSource) -> &'static str {
    match source {
        OrderSource::Draft => "draft",
        OrderSource::TiktokShop => "tiktok_shop",
    }
}

pub(crate) const COLUMNS: &str =
    "id, tenant_id, code, status, payment_status, source, source_id, reservation_reference, currency,
    subtotal_minor, discount_minor, tax_minor, shipping_minor, total_minor, paid_minor, refunded_minor, customer,
    shipping_address, notes, tags, attention, platform_update_time, version, created_at, updated_at";

/// An order row without its lines.
pub(crate) fn from_row(row: &sqlx::postgres::PgRow) -> Result<OrderRecord, DbError> {
    let internal = |what: &str| DbError::Internal(format!("bad {what} in orders row"));
    let currency: String = row.try_get("currency")?;
    let currency: money::Currency = currency.parse().map_err(|_| internal("currency"))?;
    let money = |column: &str| -> Result<Money, DbError> { Ok(Money::new(row.try_get(column)?, currency)) };
    let status: String = row.try_get("status")?;
    let payment_status: String = row.try_get("payment_status")?;
    let source: String = row.try_get("source")?;
    let customer: serde_json::Value = row.try_get("customer")?;
    let address: Option<serde_json::Value> = row.try_get("shipping_address")?;
    Ok(OrderRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        code: row.try_get("code")?,
        status: Status::parse(&status).ok_or_else(|| internal("status"))?,
        payment_status: PaymentStatus::parse(&payment_status).ok_or_else(|| internal("payment status"))?,
        source: if source == "draft" { OrderSource::Draft } else { OrderSource::TiktokShop },
        source_id: row.try_get("source_id")?,
        reservation_reference: row.try_get("reservation_reference")?,
        lines: Vec::new(),
        totals: Totals {
            subtotal: money("subtotal_minor")?,
            discount: money("discount_minor")?,
            tax: money("tax_minor")?,
            shipping: money("shipping_minor")?,
            total: money("total_minor")?,
        },
        paid_minor: row.try_get("paid_minor")?,
        refunded_minor: row.try_get("refunded_minor")?,
        customer: serde_json::from_value(customer).unwrap_or_default(),
        shipping_address: address.and_then(|a| serde_json::from_value(a).ok()),
        notes: row.try_get("notes")?,
        tags: row.try_get("tags")?,
        attention: row.try_get("attention")?,
        platform_update_time: row.try_get("platform_update_time")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) async fn load_lines(conn: &mut PgConnection, order: &mut OrderRecord) -> Result<(), DbError> {
    let currency = order.totals.total.currency;
    let rows: Vec<(Option<String>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT sku, name, unit_price_minor, quantity, line_total_minor FROM order_items WHERE order_id = $1 ORDER BY position",
    )
    .bind(order.id)
    .fetch_all(conn)
    .await?;
    order.lines = rows
        .into_iter()
        .map(|(sku, name, unit, quantity, total)| Line {
            sku,
            name,
            unit_price: Money::new(unit, currency),
            quantity,
            line_total: Money::new(total, currency),
        })
        .collect();
    Ok(())
}

/// Reads the lines of many orders in one query.
pub(crate) async fn load_lines_many(
    conn: &mut PgConnection,
    orders: &mut std::collections::HashMap<Uuid, OrderRecord>,
) -> Result<(), DbError> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = orders.keys().copied().collect();
    let rows: Vec<(Uuid, Option<String>, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT order_id, sku, name, unit_price_minor, quantity, line_total_minor FROM order_items
         WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    for (order_id, sku, name, unit, quantity, total) in rows {
        if let Some(order) = orders.get_mut(&order_id) {
            let currency = order.totals.total.currency;
            order.lines.push(Line {
                sku,
                name,
                unit_price: Money::new(unit, currency),
                quantity,
                line_total: Money::new(total, currency),
            });
        }
    }
    Ok(())
}

/// An order by id or code, only within `tenant_id`; `lock` takes the row lock.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    id_or_code: &str,
    lock: bool,
) -> Result<Option<OrderRecord>, DbError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = match id_or_code.parse::<Uuid>() {
        Ok(id) => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2{lock}"))
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
        Err(_) => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE tenant_id = $1 AND code = $2{lock}"))
                .bind(tenant_id)
                .bind(id_or_code.trim().to_uppercase())
                .fetch_optional(&mut *conn)
                .await?
        }
    };
    let Some(row) = row else { return Ok(None) };
    let mut order = from_row(&row)?;
    load_lines(conn, &mut order).await?;
    Ok(Some(order))
}

pub async fn by_source(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    source: OrderSource,
    source_id: &str,
    lock: bool,
) -> Result<Option<OrderRecord>, DbError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders WHERE tenant_id = $1 AND source = $2 AND source_id = $3{lock}"
    ))
    .bind(tenant_id)
    .bind(source_str(source))
    .bind(source_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut order = from_row(&row)?;
    load_lines(conn, &mut order).await?;
    Ok(Some(order))
}

/// Creates the order unless one exists for its source id; returns it and whether it is new.
pub async fn create(
    conn: &mut PgConnection,
    namespace: &Namespace,
    code: &str,
    new: NewOrder,
    actor: &Actor,
) -> Result<(OrderRecord, bool), DbError> {
    let creation = Creation { code: code.to_string(), new: &new, actor, trace: None };
    let mut created = creation::insert(conn, namespace, std::slice::from_ref(&creation)).await?;
    created.pop().ok_or_else(|| DbError::Internal("no order created".into()))
}

async fn audit(
    conn: &mut PgConnection,
    order_id: Uuid,
    action: &str,
    changes: serde_json::Value,
    actor: &Actor,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (order_id, action, changes, actor_user, actor_service) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(action)
    .bind(changes)
    .bind(&actor.user)
    .bind(&actor.service)
    .execute(conn)
    .await?;
    Ok(())
}

/// How strictly a transition is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Requested through the API or by the service: the lifecycle table decides.
    Lifecycle,
    /// The platform owns the order: the move was already decided by `lifecycle::platform_move`.
    Platform,
}

/// Moves a locked order to `to`, writing history, audit and events.
pub async fn apply_transition(
    conn: &mut PgConnection,
    namespace: &Namespace,
    order: &mut OrderRecord,
    to: Status,
    reason: Option<&str>,
    actor: &Actor,
    rule: Rule,
) -> Result<(), ChangeError> {
    if rule == Rule::Lifecycle {
        lifecycle::check(order.status, to)?;
    }
    let from = order.status;
    order.status = to;
    order.version += 1;
    let transition = Transition { order: order.clone(), from, reason, actor, trace: None };
    let updated = transitions::write(conn, namespace, std::slice::from_ref(&transition)).await?;
    if let Some(at) = updated.get(&order.id) {
        order.updated_at = *at;
    }
    Ok(())
}

pub(crate) fn check_version(order: &OrderRecord, expected: i64) -> Result<(), ChangeError> {
    if expected != 0 && expected != order.version {
        return Err(ChangeError::StaleVersion { expected, actual: order.version });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    Payment,
    Refund,
}

/// Records a payment or refund; a payment that covers the total confirms a pending order.
#[allow(clippy::too_many_arguments)]
pub async fn record_payment(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
    order_id: &str,
    kind: PaymentKind,
    amount: Money,
    method: &str,
    reference: &str,
    actor: &Actor,
) -> Result<OrderRecord, ChangeError> {
    let mut order = get(conn, tenant_id, order_id, true).await?.ok_or(ChangeError::NotFound)?;
    if order.source == OrderSource::TiktokShop {
        return Err(ChangeError::Refused("TikTok Shop owns the payment of its orders".into()));
    }
    if amount.currency != order.totals.total.currency {
        return Err(ChangeError::Refused(format!("the order is in {}", order.totals.total.currency)));
    }
    if amount.amount_minor <= 0 {
        return Err(ChangeError::Refused("amount must be positive".into()));
    }
    let (paid, refunded) = match kind {
        PaymentKind::Payment => {
            if order.status == Status::Cancelled {
                return Err(ChangeError::Refused("the order is cancelled; record a refund instead".into()));
            }
            payments::check_payment(amount.amount_minor, order.totals.total.amount_minor, order.paid_minor)
                .map_err(|e| ChangeError::Refused(e.to_string()))?;
            (order.paid_minor + amount.amount_minor, order.refunded_minor)
        }
        PaymentKind::Refund => {
            payments::check_refund(amount.amount_minor, order.paid_minor, order.refunded_minor)
                .map_err(|e| ChangeError::Refused(e.to_string()))?;
            (order.paid_minor, order.refunded_minor + amount.amount_minor)
        }
    };
    let payment_status = payments::status(order.totals.total.amount_minor, paid, refunded);
    let kind_str = if kind == PaymentKind::Payment { "payment" } else { "refund" };
    sqlx::query(
        "INSERT INTO payments (order_id, kind, amount_minor, method, reference, recorded_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order.id)
    .bind(kind_str)
    .bind(amount.amount_minor)
    .bind(method)
    .bind(reference)
    .bind(actor.user.as_ref().or(actor.service.as_ref()))
    .execute(&mut *conn)
    .await?;
    order.version = sqlx::query_scalar(
        "UPDATE orders SET paid_minor = $2, refunded_minor = $3, payment_status = $4, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING version",
    )
    .bind(order.id)
    .bind(paid)
    .bind(refunded)
    .bind(payment_status.as_str())
    .fetch_one(&mut *conn)
    .await?;
    audit(
        conn,
        order.id,
        kind_str,
        json!({ "amount_minor": amount.amount_minor, "method": method, "reference": reference, "payment_status": payment_status.as_str() }),
        actor,
    )
    .await?;
    order.paid_minor = paid;
    order.refunded_minor = refunded;
    order.payment_status = payment_status;
    if order.status == Status::PendingPayment && payment_status == PaymentStatus::Paid {
        apply_transition(conn, namespace, &mut order, Status::Confirmed, Some("paid"), actor, Rule::Lifecycle).await?;
    }
    Ok(order)
}

pub struct Edit {
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub shipping_address: Option<Address>,
}

/// Changes notes, tags or the address, before shipping.
pub async fn edit(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    order_id: &str,
    expected_version: i64,
    edit: Edit,
    actor: &Actor,
) -> Result<OrderRecord, ChangeError> {
    let mut order = get(conn, tenant_id, order_id, true).await?.ok_or(ChangeError::NotFound)?;
    check_version(&order, expected_version)?;
    if !order.status.editable() {
        return Err(ChangeError::Refused(format!("the order is {}; it can no longer be edited", order.status)));
    }
    let mut changes = serde_json::Map::new();
    if let Some(notes) = edit.notes {
        changes.insert("notes".into(), json!({ "from": order.notes, "to": notes }));
        order.notes = notes;
    }
    if let Some(tags) = edit.tags {
        changes.insert("tags".into(), json!({ "from": order.tags, "to": tags }));
        order.tags = tags;
    }
    if let Some(address) = edit.shipping_address {
        changes.insert("shipping_address".into(), json!({ "from": order.shipping_address, "to": address }));
        order.shipping_address = Some(address);
    }
    if changes.is_empty() {
        return Ok(order);
    }
    order.version = sqlx::query_scalar(
        "UPDATE orders SET notes = $2, tags = $3, shipping_address = $4, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING version",
    )
    .bind(order.id)
    .bind(&order.notes)
    .bind(&order.tags)
    .bind(order.shipping_address.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default()))
    .fetch_one(&mut *conn)
    .await?;
    audit(conn, order.id, "edited", serde_json::Value::Object(changes), actor).await?;
    Ok(order)
}

/// Adds a reason for a person to look at the order (idempotent).
pub async fn flag(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    order_id: Uuid,
    flag: &str,
    detail: serde_json::Value,
    actor: &Actor,
) -> Result<bool, DbError> {
    let flagged = sqlx::query(
        "UPDATE orders SET attention = array_append(attention, $3), version = version + 1, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND NOT ($3 = ANY(attention))",
    )
    .bind(tenant_id)
    .bind(order_id)
    .bind(flag)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if flagged {
        audit(conn, order_id, "flagged", json!({ "flag": flag, "detail": detail }), actor).await?;
    }
    Ok(flagged)
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub from: Option<Status>,
    pub to: Status,
    pub reason: Option<String>,
    pub actor_user: Option<String>,
    pub actor_service: Option<String>,
    pub source: String,
    pub at: OffsetDateTime,
}

/// A `status_history` row as selected: from, to, reason, actor user, actor service, source, at.
type HistoryColumns = (Option<String>, String, Option<String>, Option<String>, Option<String>, String, OffsetDateTime);

pub async fn history_of(conn: &mut PgConnection, order_id: Uuid) -> Result<Vec<HistoryRow>, DbError> {
    let rows: Vec<HistoryColumns> = sqlx::query_as(
        "SELECT from_status, to_status, reason, actor_user, actor_service, source, at FROM status_history WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(from, to, reason, actor_user, actor_service, source, at)| {
            Some(HistoryRow {
                from: from.as_deref().and_then(Status::parse),
                to: Status::parse(&to)?,
                reason,
                actor_user,
                actor_service,
                source,
                at,
            })
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRow {
    pub kind: PaymentKind,
    pub amount_minor: i64,
    pub method: String,
    pub reference: String,
    pub recorded_by: Option<String>,
    pub at: OffsetDateTime,
}

pub async fn payments_of(conn: &mut PgConnection, order_id: Uuid) -> Result<Vec<PaymentRow>, DbError> {
    let rows: Vec<(String, i64, String, String, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "SELECT kind, amount_minor, method, reference, recorded_by, at FROM payments WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, amount_minor, method, reference, recorded_by, at)| PaymentRow {
            kind: if kind == "refund" { PaymentKind::Refund } else { PaymentKind::Payment },
            amount_minor,
            method,
            reference,
            recorded_by,
            at,
        })
        .collect())
}

/// Cancels orders left unpaid past their tenant's payment window (draft orders only: TikTok
/// Shop owns its payments). Returns how many were cancelled.
pub async fn cancel_unpaid(conn: &mut PgConnection, namespace: &Namespace, limit: i64) -> Result<usize, DbError> {
    // From the tenants that have a window to each one's oldest unpaid orders (`orders_unpaid`):
    // the work follows the tenants that use the feature, never every unpaid order of all of them.
    // The status is checked again on the locked row: a payment may have landed in between.
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM orders o
         WHERE o.id IN (SELECT due.id FROM settings s
                        CROSS JOIN LATERAL (
                            SELECT u.id FROM orders u
                            WHERE u.tenant_id = s.tenant_id AND u.status = 'pending_payment' AND u.source = 'draft'
                              AND u.created_at < now() - make_interval(mins => s.payment_window_minutes::int)
                            ORDER BY u.created_at LIMIT $1) due
                        WHERE s.payment_window_minutes > 0
                        LIMIT $1)
           AND o.status = 'pending_payment'
         ORDER BY o.created_at FOR UPDATE SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let actor = Actor::system("payment-timeout");
    let mut cancelled = 0;
    for row in rows {
        let mut order = from_row(&row)?;
        load_lines(conn, &mut order).await?;
        match apply_transition(
            conn,
            namespace,
            &mut order,
            Status::Cancelled,
            Some("payment_timeout"),
            &actor,
            Rule::Lifecycle,
        )
        .await
        {
            Ok(()) => cancelled += 1,
            Err(ChangeError::Database(err)) => return Err(err),
            Err(other) => tracing::warn!(order_id = %order.id, error = %other, "payment timeout could not cancel"),
        }
    }
    Ok(cancelled)
}

/// What happened to a TikTok Shop order detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformOutcome {
    Created,
    Moved {
        from: Status,
        to: Status,
    },
    /// Older than what was applied, or no move: nothing changed.
    Unchanged,
}

/// Creates the order of a TikTok Shop order detail, or applies its newer status. The platform's
/// update time orders notifications, so a late, older one never moves an order back.
#[allow(clippy::too_many_arguments)]
pub async fn apply_platform_order(
    conn: &mut PgConnection,
    namespace: &Namespace,
    codes_next: impl std::future::Future<Output = Result<String, DbError>>,
    tenant_id: Uuid,
    shop_id: &str,
    order_id: &str,
    mapped: crate::domain::tiktok::Mapped,
    packages: Vec<String>,
) -> Result<PlatformOutcome, ChangeError> {
    let actor = Actor {
        user: None,
        service: Some("tiktok_shop".into()),
        source: ChangeSource::TiktokShop,
        tracking_number: None,
        shipping_provider_id: None,
    };
    if let Some(mut order) = by_source(conn, tenant_id, OrderSource::TiktokShop, order_id, true).await? {
        if order.platform_update_time.is_some_and(|applied| mapped.update_time <= applied) {
            return Ok(PlatformOutcome::Unchanged);
        }
        sqlx::query("UPDATE orders SET platform_update_time = $2, platform_packages = $3 WHERE id = $1")
            .bind(order.id)
            .bind(mapped.update_time)
            .bind(&packages)
            .execute(&mut *conn)
            .await?;
        if mapped.paid && order.payment_status == PaymentStatus::Pending {
            sqlx::query("UPDATE orders SET payment_status = 'paid', paid_minor = total_minor WHERE id = $1")
                .bind(order.id)
                .execute(&mut *conn)
                .await?;
        }
        return match lifecycle::platform_move(order.status, mapped.status) {
            Some(to) => {
                let from = order.status;
                apply_transition(conn, namespace, &mut order, to, Some("tiktok_shop"), &actor, Rule::Platform).await?;
                Ok(PlatformOutcome::Moved { from, to })
            }
            None => Ok(PlatformOutcome::Unchanged),
        };
    }
    let code = codes_next.await?;
    let attention = if mapped.unmapped > 0 { vec!["unmapped_sku".to_string()] } else { Vec::new() };
    let new = NewOrder {
        tenant_id,
        source: OrderSource::TiktokShop,
        source_id: order_id.to_string(),
        reservation_reference: format!("order:tiktok:{order_id}"),
        reservation_held: false,
        lines: mapped.lines,
        totals: mapped.totals,
        customer: mapped.customer,
        shipping_address: mapped.address,
        notes: String::new(),
        attention,
        status: mapped.status,
        payment_status: if mapped.paid { PaymentStatus::Paid } else { PaymentStatus::Pending },
        platform_update_time: Some(mapped.update_time),
    };
    let paid = mapped.paid;
    let (order, created) = create(conn, namespace, &code, new, &actor).await?;
    if created {
        sqlx::query("UPDATE orders SET platform_shop_id = $2, platform_packages = $3, paid_minor = CASE WHEN $4 THEN total_minor ELSE 0 END WHERE id = $1")
            .bind(order.id)
            .bind(shop_id)
            .bind(&packages)
            .bind(paid)
            .execute(&mut *conn)
            .await?;
        Ok(PlatformOutcome::Created)
    } else {
        Ok(PlatformOutcome::Unchanged)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncRow {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// The latest sync-back state of a TikTok Shop order.
pub async fn sync_state(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<SyncRow>, DbError> {
    let row: Option<(String, i32, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "SELECT status, attempts, last_error, updated_at FROM tiktok_sync WHERE order_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(status, attempts, last_error, updated_at)| SyncRow { status, attempts, last_error, updated_at }))
}
