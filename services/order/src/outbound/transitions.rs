//! Status changes, one or a whole batch at a time. A batch locks its orders once, in id order
//! (so two batches wait for each other instead of deadlocking), checks each requested move
//! against the order as the moves before it in the batch left it, and writes every move's row
//! change, history and audit rows, sync-back and events in a few statements. A refused move
//! (not found, stale version, illegal) writes nothing and leaves the others alone.

use std::collections::{BTreeMap, HashMap};

use bus::outbox::OutboxRow;
use bus::{Envelope, Namespace};
use events::order::{OrderCancelled, OrderSource, OrderStatusChanged};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::orders::{self, Actor, COLUMNS, ChangeError, ChangeSource, OrderRecord};
use crate::domain::lifecycle::{self, Status};

/// A status change asked for through the API.
#[derive(Debug, Clone)]
pub struct MoveRequest {
    pub tenant_id: Uuid,
    /// The order's id or code.
    pub order: String,
    pub to: Status,
    pub reason: Option<String>,
    /// The version the caller saw; 0: whatever it is now.
    pub expected_version: i64,
    pub actor: Actor,
    /// The W3C trace context of the request, for its events (a committer runs outside the
    /// request's span); `None`: the current span's.
    pub trace: Option<BTreeMap<String, String>>,
}

/// A checked move, ready to be written.
pub(crate) struct Transition<'a> {
    /// The order as the move leaves it (status and version already changed).
    pub order: OrderRecord,
    pub from: Status,
    pub reason: Option<&'a str>,
    pub actor: &'a Actor,
    pub trace: Option<&'a BTreeMap<String, String>>,
}

/// Applies the requested moves in the order given, within the caller's transaction. Returns each
/// move's outcome; `Err` only when the database failed (then the transaction must be rolled back).
pub async fn apply_many(
    conn: &mut PgConnection,
    namespace: &Namespace,
    requests: &[MoveRequest],
) -> Result<Vec<Result<OrderRecord, ChangeError>>, DbError> {
    let ids = resolve(conn, requests).await?;
    let mut wanted: Vec<Uuid> = ids.iter().flatten().copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut locked = lock(conn, &wanted).await?;

    let mut outcomes = Vec::with_capacity(requests.len());
    let mut transitions = Vec::new();
    for (request, id) in requests.iter().zip(ids) {
        let order = id.and_then(|id| locked.get_mut(&id)).filter(|o| o.tenant_id == request.tenant_id);
        let outcome = match order {
            None => Err(ChangeError::NotFound),
            Some(order) => plan(order, request.to, request.expected_version).map(|from| {
                transitions.push(Transition {
                    order: order.clone(),
                    from,
                    reason: request.reason.as_deref(),
                    actor: &request.actor,
                    trace: request.trace.as_ref(),
                });
            }),
        };
        outcomes.push(outcome);
    }
    let updated = write(conn, namespace, &transitions).await?;
    let mut moved = transitions.into_iter();
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.and_then(|()| {
                let mut order = moved.next().ok_or_else(|| DbError::Internal("a move went missing".into()))?.order;
                if let Some(at) = updated.get(&order.id) {
                    order.updated_at = *at;
                }
                Ok(order)
            })
        })
        .collect())
}

/// Checks a requested move against the order and applies it to the record; returns where the
/// order was.
fn plan(order: &mut OrderRecord, to: Status, expected_version: i64) -> Result<Status, ChangeError> {
    orders::check_version(order, expected_version)?;
    lifecycle::check(order.status, to)?;
    let from = order.status;
    order.status = to;
    order.version += 1;
    Ok(from)
}

/// The id each request names (`None`: no such code in its tenant). Codes cost a query, ids none.
async fn resolve(conn: &mut PgConnection, requests: &[MoveRequest]) -> Result<Vec<Option<Uuid>>, DbError> {
    let mut ids: Vec<Option<Uuid>> = requests.iter().map(|r| r.order.trim().parse::<Uuid>().ok()).collect();
    let by_code: Vec<usize> = (0..requests.len()).filter(|&i| ids[i].is_none()).collect();
    if by_code.is_empty() {
        return Ok(ids);
    }
    let tenants: Vec<Uuid> = by_code.iter().map(|&i| requests[i].tenant_id).collect();
    let codes: Vec<String> = by_code.iter().map(|&i| requests[i].order.trim().to_uppercase()).collect();
    let found: Vec<(i64, Uuid)> = sqlx::query_as(
        "SELECT c.n, o.id FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS c(tenant_id, code, n)
         JOIN orders o ON o.tenant_id = c.tenant_id AND o.code = c.code",
    )
    .bind(&tenants)
    .bind(&codes)
    .fetch_all(&mut *conn)
    .await?;
    for (n, id) in found {
        if let Some(&index) = usize::try_from(n - 1).ok().and_then(|n| by_code.get(n)) {
            ids[index] = Some(id);
        }
    }
    Ok(ids)
}

/// Locks the orders (in id order) and reads them with their lines.
async fn lock(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, OrderRecord>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE"))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut locked = HashMap::with_capacity(rows.len());
    for row in &rows {
        let order = orders::from_row(row)?;
        locked.insert(order.id, order);
    }
    orders::load_lines_many(conn, &mut locked).await?;
    Ok(locked)
}

/// Writes checked moves of locked orders: each order's row takes its last move's status and
/// version; every move gets its history and audit rows (in the order given), its events and,
/// for a TikTok Shop order changed here, its sync-back. Returns each order's new `updated_at`.
pub(crate) async fn write(
    conn: &mut PgConnection,
    namespace: &Namespace,
    transitions: &[Transition<'_>],
) -> Result<HashMap<Uuid, OffsetDateTime>, DbError> {
    if transitions.is_empty() {
        return Ok(HashMap::new());
    }
    let mut last: HashMap<Uuid, (&'static str, i64)> = HashMap::new();
    for t in transitions {
        last.insert(t.order.id, (t.order.status.as_str(), t.order.version));
    }
    let (row_ids, (row_statuses, row_versions)): (Vec<Uuid>, (Vec<&str>, Vec<i64>)) = last.into_iter().unzip();
    let order_ids: Vec<Uuid> = transitions.iter().map(|t| t.order.id).collect();
    let froms: Vec<&str> = transitions.iter().map(|t| t.from.as_str()).collect();
    let tos: Vec<&str> = transitions.iter().map(|t| t.order.status.as_str()).collect();
    let reasons: Vec<Option<&str>> = transitions.iter().map(|t| t.reason).collect();
    let users: Vec<Option<&str>> = transitions.iter().map(|t| t.actor.user.as_deref()).collect();
    let services: Vec<Option<&str>> = transitions.iter().map(|t| t.actor.service.as_deref()).collect();
    let sources: Vec<&str> = transitions.iter().map(|t| t.actor.source.as_str()).collect();
    let changes: Vec<serde_json::Value> = transitions
        .iter()
        .map(|t| json!({ "from": t.from.as_str(), "to": t.order.status.as_str(), "reason": t.reason }))
        .collect();
    let updated: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(WRITE)
        .bind(&row_ids)
        .bind(&row_statuses)
        .bind(&row_versions)
        .bind(&order_ids)
        .bind(&froms)
        .bind(&tos)
        .bind(&reasons)
        .bind(&users)
        .bind(&services)
        .bind(&sources)
        .bind(&changes)
        .fetch_all(&mut *conn)
        .await?;
    if updated.len() != row_ids.len() {
        return Err(DbError::Internal("a moved order vanished".into()));
    }

    let syncs: Vec<(Uuid, Uuid, &str, serde_json::Value)> = transitions.iter().filter_map(sync_back).collect();
    if !syncs.is_empty() {
        let (ids, tenants, actions, payloads) = syncs.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            |(mut ids, mut tenants, mut actions, mut payloads), (id, tenant, action, payload)| {
                ids.push(id);
                tenants.push(tenant);
                actions.push(action);
                payloads.push(payload);
                (ids, tenants, actions, payloads)
            },
        );
        sqlx::query(
            "INSERT INTO tiktok_sync (order_id, tenant_id, action, payload)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[])",
        )
        .bind(&ids)
        .bind(&tenants)
        .bind(&actions)
        .bind(&payloads)
        .execute(&mut *conn)
        .await?;
    }

    let mut outbox = Vec::with_capacity(transitions.len());
    for t in transitions {
        let order = &t.order;
        let aggregate = format!("order:{}", order.id);
        let changed = OrderStatusChanged {
            order_id: order.id.to_string(),
            from: t.from.as_str().to_string(),
            to: order.status.as_str().to_string(),
            reason: t.reason.map(str::to_string),
            version: order.version,
            reservation_reference: order.reservation_reference.clone(),
            items: order.event_lines(),
        };
        outbox.push(row(namespace, t, Envelope::new(order.tenant_id, aggregate.clone(), changed, None))?);
        if order.status == Status::Cancelled {
            let cancelled = OrderCancelled {
                order_id: order.id.to_string(),
                reason: t.reason.unwrap_or("cancelled").to_string(),
                reservation_reference: order.reservation_reference.clone(),
                items: order.event_lines(),
            };
            outbox.push(row(namespace, t, Envelope::new(order.tenant_id, aggregate, cancelled, None))?);
        }
    }
    bus::outbox::enqueue_many(conn, &outbox).await.map_err(DbError::from)?;
    Ok(updated.into_iter().collect())
}

fn row<T: bus::Event>(
    namespace: &Namespace,
    t: &Transition<'_>,
    mut envelope: Envelope<T>,
) -> Result<OutboxRow, DbError> {
    if let Some(trace) = t.trace {
        envelope.trace = trace.clone();
    }
    OutboxRow::for_event(namespace, envelope).map_err(DbError::from)
}

/// Changes made here that TikTok must know are pushed back; changes from TikTok never are.
fn sync_back<'a>(t: &Transition<'a>) -> Option<(Uuid, Uuid, &'static str, serde_json::Value)> {
    if t.order.source != OrderSource::TiktokShop || t.actor.source == ChangeSource::TiktokShop {
        return None;
    }
    let (action, payload) = match t.order.status {
        Status::Cancelled => ("cancel", json!({ "reason": t.reason.unwrap_or("seller_cancelled") })),
        Status::Shipped => (
            "ship",
            json!({
                "tracking_number": t.actor.tracking_number.clone().unwrap_or_default(),
                "shipping_provider_id": t.actor.shipping_provider_id.clone().unwrap_or_default(),
            }),
        ),
        _ => return None,
    };
    Some((t.order.id, t.order.tenant_id, action, payload))
}

/// The orders' rows, then the history and audit rows of every move, in one statement.
const WRITE: &str = "
WITH moved AS (
    UPDATE orders o SET status = m.status, version = m.version, updated_at = now()
    FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS m(id, status, version)
    WHERE o.id = m.id
    RETURNING o.id, o.updated_at
), history AS (
    INSERT INTO status_history (order_id, from_status, to_status, reason, actor_user, actor_service, source)
    SELECT * FROM UNNEST($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
), audit AS (
    INSERT INTO audit_log (order_id, action, changes, actor_user, actor_service)
    SELECT a.order_id, 'status_changed', a.changes, a.actor_user, a.actor_service
    FROM UNNEST($4::uuid[], $11::jsonb[], $8::text[], $9::text[]) AS a(order_id, changes, actor_user, actor_service)
)
SELECT id, updated_at FROM moved";
