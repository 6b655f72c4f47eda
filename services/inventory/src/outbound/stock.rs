//! Stock, the ledger and reservations in Postgres. Every function takes the caller's
//! connection (a transaction), so the gRPC path (batched) and the bus consumers (inside their
//! inbox transaction) share one implementation.

use std::collections::HashMap;

use bus::{Envelope, Namespace};
use events::inventory::{LowStock, ReservationChanged};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use crate::domain::reservations::{self, Change, Level, Line, Short, Status, StockKey, Watch};

#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub reference: String,
    pub status: Status,
    pub lines: Vec<Line>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ReserveJob {
    pub tenant_id: Uuid,
    pub reference: String,
    pub lines: Vec<Line>,
    pub actor: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReserveError {
    #[error("not enough stock")]
    Shortage(Vec<Short>),
    #[error("reference {0} is already used for other items")]
    ReferenceReused(String),
    #[error("{0}")]
    Database(std::sync::Arc<DbError>),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("reservation not found")]
    NotFound,
    #[error("reservation is {current}; it cannot be {wanted}")]
    Refused { current: &'static str, wanted: &'static str },
    #[error("{0}")]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(err: sqlx::Error) -> Self {
        ChangeError::Database(err.into())
    }
}

fn same_lines(a: &[Line], b: &[Line]) -> bool {
    let totals = |lines: &[Line]| {
        let mut map: HashMap<StockKey, i64> = HashMap::new();
        for line in lines {
            *map.entry(line.key.clone()).or_default() += line.quantity;
        }
        map
    };
    totals(a) == totals(b)
}

/// Loads a reservation with its lines.
pub async fn get_reservation(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    reference: &str,
    lock: bool,
) -> Result<Option<Reservation>, DbError> {
    Ok(get_reservations(conn, &[(tenant_id, reference)], lock).await?.remove(&(tenant_id, reference.to_string())))
}

/// Loads the reservations of several references in two round trips (one when none exists, the
/// common case for a batch of new approvals), keyed by tenant and reference. Each key is a
/// primary-key probe, in the keys' order (callers that lock pass them sorted).
pub async fn get_reservations(
    conn: &mut PgConnection,
    keys: &[(Uuid, &str)],
    lock: bool,
) -> Result<HashMap<(Uuid, String), Reservation>, DbError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let tenants: Vec<Uuid> = keys.iter().map(|(t, _)| *t).collect();
    let references: Vec<&str> = keys.iter().map(|(_, r)| *r).collect();
    let headers: Vec<Header> = sqlx::query_as(&format!(
        "SELECT r.tenant_id, r.reference, r.status, r.created_at
         FROM UNNEST($1::uuid[], $2::text[]) AS k(tenant_id, reference)
         CROSS JOIN LATERAL (
             SELECT * FROM reservations r WHERE r.tenant_id = k.tenant_id AND r.reference = k.reference{}
         ) r",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(&tenants)
    .bind(&references)
    .fetch_all(&mut *conn)
    .await?;
    with_lines(conn, headers).await
}

/// A reservation row as read: tenant, reference, status, created at.
type Header = (Uuid, String, String, OffsetDateTime);

/// The reservations of `headers`, with their lines (one more round trip, none if there are none).
async fn with_lines(
    conn: &mut PgConnection,
    headers: Vec<Header>,
) -> Result<HashMap<(Uuid, String), Reservation>, DbError> {
    if headers.is_empty() {
        return Ok(HashMap::new());
    }
    let found_tenants: Vec<Uuid> = headers.iter().map(|h| h.0).collect();
    let found_references: Vec<&str> = headers.iter().map(|h| h.1.as_str()).collect();
    let lines: Vec<(Uuid, String, String, String, i64)> = sqlx::query_as(
        "SELECT i.tenant_id, i.reference, i.sku, i.location, i.quantity
         FROM UNNEST($1::uuid[], $2::text[]) AS k(tenant_id, reference)
         CROSS JOIN LATERAL (
             SELECT * FROM reservation_items i WHERE i.tenant_id = k.tenant_id AND i.reference = k.reference
             ORDER BY i.sku, i.location
         ) i",
    )
    .bind(&found_tenants)
    .bind(&found_references)
    .fetch_all(&mut *conn)
    .await?;
    let mut reservations = HashMap::with_capacity(headers.len());
    for (tenant_id, reference, status, created_at) in headers {
        let status = Status::parse(&status).ok_or_else(|| DbError::Internal(format!("unknown status {status}")))?;
        let reservation = Reservation { reference: reference.clone(), status, lines: Vec::new(), created_at };
        reservations.insert((tenant_id, reference), reservation);
    }
    for (tenant_id, reference, sku, location, quantity) in lines {
        if let Some(reservation) = reservations.get_mut(&(tenant_id, reference)) {
            reservation.lines.push(Line { key: StockKey { sku, location }, quantity });
        }
    }
    Ok(reservations)
}

/// Reserves a batch of requests in one transaction, each all-or-nothing, in arrival order.
/// Idempotent per reference: a held reservation is returned as it is; a released one is held
/// again (a re-approval of the same draft version).
pub async fn reserve_batch(
    conn: &mut PgConnection,
    namespace: &Namespace,
    jobs: &[ReserveJob],
) -> Result<Vec<Result<Reservation, ReserveError>>, DbError> {
    let mut outcomes: Vec<Option<Result<Reservation, ReserveError>>> = (0..jobs.len()).map(|_| None).collect();
    let mut duplicates: Vec<(usize, usize)> = Vec::new();
    let mut to_allocate: Vec<usize> = Vec::new();
    // Serialise every request for the same reference across batches and consumers: without it,
    // two batches could both see a new reference as absent and hold the stock twice. Sorted, so
    // batches taking several references cannot deadlock. The same statement then locks every
    // stock row the batch may touch (a repeated reference's rows too: a few extra locks, one
    // round trip fewer), whose locked rows are read at their latest version however long the
    // wait, and reads the references' reservations as the locks' previous holder left them.
    let mut references: Vec<(Uuid, &str)> = jobs.iter().map(|j| (j.tenant_id, j.reference.as_str())).collect();
    references.sort();
    references.dedup();
    let mut keys: Vec<(Uuid, StockKey)> =
        jobs.iter().flat_map(|j| j.lines.iter().map(move |l| (j.tenant_id, l.key.clone()))).collect();
    keys.sort();
    keys.dedup();
    let (locked, mut existing) = lock_for_reservations(conn, &references, &keys).await?;
    let mut first_in_batch: HashMap<(Uuid, &str), usize> = HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        if let Some(&first) = first_in_batch.get(&(job.tenant_id, job.reference.as_str())) {
            // The same reference twice in one batch (a retry racing its original): same answer.
            duplicates.push((index, first));
            continue;
        }
        first_in_batch.insert((job.tenant_id, job.reference.as_str()), index);
        match existing.remove(&(job.tenant_id, job.reference.clone())) {
            Some(existing) if !same_lines(&existing.lines, &job.lines) => {
                outcomes[index] = Some(Err(ReserveError::ReferenceReused(job.reference.clone())));
            }
            Some(existing) if existing.status != Status::Released => outcomes[index] = Some(Ok(existing)),
            _ => to_allocate.push(index),
        }
    }

    let mut by_tenant: HashMap<Uuid, HashMap<StockKey, Level>> = HashMap::new();
    for ((tenant, key), (level, _)) in &locked {
        by_tenant.entry(*tenant).or_default().insert(key.clone(), *level);
    }
    let before = by_tenant.clone();
    for &index in &to_allocate {
        let job = &jobs[index];
        let tenant_levels = by_tenant.entry(job.tenant_id).or_default();
        let result = reservations::allocate(tenant_levels, std::slice::from_ref(&job.lines)).remove(0);
        outcomes[index] = Some(match result {
            Ok(()) => Ok(Reservation {
                reference: job.reference.clone(),
                status: Status::Held,
                lines: job.lines.clone(),
                created_at: OffsetDateTime::now_utc(),
            }),
            Err(short) => Err(ReserveError::Shortage(short)),
        });
    }

    // Apply what was granted.
    let granted: Vec<&ReserveJob> =
        to_allocate.iter().filter(|&&i| matches!(outcomes[i], Some(Ok(_)))).map(|&i| &jobs[i]).collect();
    if !granted.is_empty() {
        let mut deltas: Vec<(Uuid, StockKey, i64)> = Vec::new();
        for (tenant, levels) in &by_tenant {
            for (key, level) in levels {
                let old = before.get(tenant).and_then(|l| l.get(key)).map_or(0, |l| l.reserved);
                if level.reserved != old {
                    deltas.push((*tenant, key.clone(), level.reserved - old));
                }
            }
        }
        let ledger: Vec<LedgerRow> = granted
            .iter()
            .flat_map(|job| {
                job.lines.iter().map(|line| LedgerRow {
                    tenant_id: job.tenant_id,
                    key: line.key.clone(),
                    on_hand_delta: 0,
                    reserved_delta: line.quantity,
                    reason: "reserve",
                    reference: Some(job.reference.clone()),
                    note: None,
                    actor: Some(job.actor.clone()),
                })
            })
            .collect();
        let deltas = deltas.iter().map(|(t, k, d)| (*t, k, 0, *d)).collect();
        apply_deltas(conn, namespace, &locked, deltas, &ledger, &granted).await?;
    }
    for (index, first) in duplicates {
        outcomes[index] = match &outcomes[first] {
            Some(Ok(reservation)) if same_lines(&reservation.lines, &jobs[index].lines) => {
                Some(Ok(reservation.clone()))
            }
            Some(Ok(_)) => Some(Err(ReserveError::ReferenceReused(jobs[index].reference.clone()))),
            other => other.clone(),
        };
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(ReserveError::Database(std::sync::Arc::new(DbError::Internal("no outcome".into()))))
            })
        })
        .collect())
}

/// A stock row locked for a change: its level and its low-stock watch.
type Locked = HashMap<(Uuid, StockKey), (Level, Watch)>;

/// The stock rows of `$1`, `$2`, `$3` (tenants, SKUs, locations) with their levels and low-stock
/// watch, locked: one primary-key probe per key, in the keys' order (callers pass them sorted,
/// so concurrent batches cannot deadlock). A join would let the planner read the whole table to
/// find a handful of rows.
const LOCK_LEVELS: &str = "SELECT s.tenant_id, s.sku, s.location, s.on_hand, s.reserved,
        coalesce(s.low_stock_threshold,
            (SELECT st.default_low_stock_threshold FROM settings st WHERE st.tenant_id = s.tenant_id), 0)
            AS threshold,
        s.low_stock_alerted
    FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS k(tenant_id, sku, location)
    CROSS JOIN LATERAL (
        SELECT * FROM stock_levels s
        WHERE s.tenant_id = k.tenant_id AND s.sku = k.sku AND s.location = k.location
        FOR UPDATE
    ) s";

/// A stock row as [`LOCK_LEVELS`] reads it.
type LevelRow = (Uuid, String, String, i64, i64, i64, bool);

fn locked_from(rows: impl IntoIterator<Item = LevelRow>) -> Locked {
    rows.into_iter()
        .map(|(tenant, sku, location, on_hand, reserved, threshold, alerted)| {
            ((tenant, StockKey { sku, location }), (Level { on_hand, reserved }, Watch { threshold, alerted }))
        })
        .collect()
}

/// Locks the stock rows of `keys` and reads their levels and low-stock watch.
async fn lock_levels(conn: &mut PgConnection, keys: &[(Uuid, StockKey)]) -> Result<Locked, DbError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let tenants: Vec<Uuid> = keys.iter().map(|(t, _)| *t).collect();
    let skus: Vec<&str> = keys.iter().map(|(_, k)| k.sku.as_str()).collect();
    let locations: Vec<&str> = keys.iter().map(|(_, k)| k.location.as_str()).collect();
    let rows: Vec<LevelRow> =
        sqlx::query_as(LOCK_LEVELS).bind(&tenants).bind(&skus).bind(&locations).fetch_all(conn).await?;
    Ok(locked_from(rows))
}

/// [`lock_for_reservations`]'s statement, composed once: it runs in every reservation batch.
static LOCK_FOR_RESERVATIONS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH serialised AS MATERIALIZED (
             SELECT pg_advisory_xact_lock(hashtextextended(t::text || ':' || r, 0))
             FROM UNNEST($4::uuid[], $5::text[]) WITH ORDINALITY AS x(t, r, n) ORDER BY n
         )
         SELECT 'l', l.tenant_id, l.sku, l.location, l.on_hand, l.reserved, l.threshold, l.low_stock_alerted,
                NULL::timestamptz
         FROM ({LOCK_LEVELS}) l
         WHERE (SELECT count(*) FROM serialised) >= 0
         UNION ALL
         SELECT 'r', r.tenant_id, r.reference, r.status, NULL, NULL, NULL, NULL, r.created_at
         FROM reservations_after_locks($4::uuid[], $5::text[], (SELECT count(*) FROM serialised)) r"
    )
});

/// A reservation batch's first statement: takes the references' transaction-scoped advisory
/// locks (in their order: callers pass them sorted), then locks the stock rows of `keys` and
/// reads the references' reservations. The advisory locks come first: the stock rows wait for
/// them through a one-time condition on their count, and the reservations are read by a
/// VOLATILE function (migration `reservations_after_locks`) that takes that count as an
/// argument, so it runs after them, with a snapshot of its own that holds what the locks'
/// previous holder committed. Existing reservations' lines take one more round trip (rare: a
/// retry, a re-approval).
async fn lock_for_reservations(
    conn: &mut PgConnection,
    references: &[(Uuid, &str)],
    keys: &[(Uuid, StockKey)],
) -> Result<(Locked, HashMap<(Uuid, String), Reservation>), DbError> {
    let tenants: Vec<Uuid> = keys.iter().map(|(t, _)| *t).collect();
    let skus: Vec<&str> = keys.iter().map(|(_, k)| k.sku.as_str()).collect();
    let locations: Vec<&str> = keys.iter().map(|(_, k)| k.location.as_str()).collect();
    let lock_tenants: Vec<Uuid> = references.iter().map(|(t, _)| *t).collect();
    let lock_references: Vec<&str> = references.iter().map(|(_, r)| *r).collect();
    // One row shape for both kinds: a stock row ('l': sku, location, levels, watch) or a
    // reservation ('r': reference, status, created_at).
    type Row =
        (String, Uuid, String, String, Option<i64>, Option<i64>, Option<i64>, Option<bool>, Option<OffsetDateTime>);
    let rows: Vec<Row> = sqlx::query_as(LOCK_FOR_RESERVATIONS.as_str())
        .bind(&tenants)
        .bind(&skus)
        .bind(&locations)
        .bind(&lock_tenants)
        .bind(&lock_references)
        .fetch_all(&mut *conn)
        .await?;
    let mut levels = Vec::with_capacity(rows.len());
    let mut headers = Vec::new();
    for (kind, tenant, a, b, on_hand, reserved, threshold, alerted, created_at) in rows {
        match (kind.as_str(), on_hand, reserved, threshold, alerted, created_at) {
            ("l", Some(on_hand), Some(reserved), Some(threshold), Some(alerted), _) => {
                levels.push((tenant, a, b, on_hand, reserved, threshold, alerted));
            }
            ("r", .., Some(created_at)) => headers.push((tenant, a, b, created_at)),
            _ => return Err(DbError::Internal(format!("unexpected {kind} row locking a reservation batch"))),
        }
    }
    Ok((locked_from(levels), with_lines(conn, headers).await?))
}

/// Applies (on_hand, reserved) deltas to rows locked by [`lock_levels`] (one delta per row; 0, 0
/// re-checks a row whose threshold changed), keeps their `low_stock_alerted` in step, writes
/// the ledger rows that say why, and publishes `inventory.low_stock` for each row that has just
/// crossed below its threshold. `holds`: reservations granted by this change, written as held
/// with their items. One statement for the lot (this runs in every reservation batch); returns
/// the ledger rows' ids.
async fn apply_deltas(
    conn: &mut PgConnection,
    namespace: &Namespace,
    locked: &Locked,
    deltas: Vec<(Uuid, &StockKey, i64, i64)>,
    ledger: &[LedgerRow],
    holds: &[&ReserveJob],
) -> Result<Vec<i64>, DbError> {
    if deltas.is_empty() && ledger.is_empty() && holds.is_empty() {
        return Ok(Vec::new());
    }
    // `UPDATE ... FROM` applies one joined row per target row: two deltas for one row would lose one.
    debug_assert!(
        deltas.iter().map(|(t, k, _, _)| (t, *k)).collect::<std::collections::HashSet<_>>().len() == deltas.len(),
        "one delta per stock row"
    );
    let mut crossed = Vec::new();
    let mut alerted = Vec::with_capacity(deltas.len());
    for (tenant_id, key, on_hand, reserved) in &deltas {
        let (level, watch) = locked
            .get(&(*tenant_id, (*key).clone()))
            .ok_or_else(|| DbError::Internal(format!("stock row {} was not locked", key.sku)))?;
        let available = (level.on_hand + on_hand) - (level.reserved + reserved);
        alerted.push(watch.is_low(available));
        if watch.crosses_below(available) {
            let event = LowStock {
                sku: key.sku.clone(),
                location: key.location.clone(),
                available,
                threshold: watch.threshold,
            };
            crossed.push(Envelope::new(*tenant_id, format!("sku:{}", key.sku), event, None));
        }
    }
    let tenants: Vec<Uuid> = deltas.iter().map(|d| d.0).collect();
    let skus: Vec<&str> = deltas.iter().map(|d| d.1.sku.as_str()).collect();
    let locations: Vec<&str> = deltas.iter().map(|d| d.1.location.as_str()).collect();
    let on_hand: Vec<i64> = deltas.iter().map(|d| d.2).collect();
    let reserved: Vec<i64> = deltas.iter().map(|d| d.3).collect();
    let held = HeldRows::of(holds);
    // The items' foreign key is checked at the statement's end, when the headers are in.
    let sql = format!(
        "WITH {}moved AS (
             UPDATE stock_levels s SET on_hand = s.on_hand + d.on_hand, reserved = s.reserved + d.reserved,
               low_stock_alerted = d.alerted, updated_at = now()
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bool[])
               AS d(tenant_id, sku, location, on_hand, reserved, alerted)
             WHERE s.tenant_id = d.tenant_id AND s.sku = d.sku AND s.location = d.location
         )
         INSERT INTO stock_ledger (tenant_id, sku, location, on_hand_delta, reserved_delta, reason, reference, note, actor)
         SELECT * FROM UNNEST($7::uuid[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[],
             $13::text[], $14::text[], $15::text[])
         RETURNING id",
        if holds.is_empty() { "" } else { HOLD_RESERVATIONS }
    );
    let ledger_ids: Vec<i64> = sqlx::query_scalar(&sql)
        .bind(&tenants)
        .bind(&skus)
        .bind(&locations)
        .bind(&on_hand)
        .bind(&reserved)
        .bind(&alerted)
        .bind(ledger.iter().map(|r| r.tenant_id).collect::<Vec<Uuid>>())
        .bind(ledger.iter().map(|r| r.key.sku.as_str()).collect::<Vec<&str>>())
        .bind(ledger.iter().map(|r| r.key.location.as_str()).collect::<Vec<&str>>())
        .bind(ledger.iter().map(|r| r.on_hand_delta).collect::<Vec<i64>>())
        .bind(ledger.iter().map(|r| r.reserved_delta).collect::<Vec<i64>>())
        .bind(ledger.iter().map(|r| r.reason).collect::<Vec<&str>>())
        .bind(ledger.iter().map(|r| r.reference.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(ledger.iter().map(|r| r.note.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(ledger.iter().map(|r| r.actor.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(&held.tenants)
        .bind(&held.references)
        .bind(&held.item_tenants)
        .bind(&held.item_references)
        .bind(&held.item_skus)
        .bind(&held.item_locations)
        .bind(&held.item_quantities)
        .fetch_all(&mut *conn)
        .await?;
    for envelope in crossed {
        bus::outbox::enqueue(conn, namespace, envelope).await?;
    }
    Ok(ledger_ids)
}

/// The CTEs that write granted reservations as held, with their items: [`apply_deltas`]'s binds
/// $16 to $22 ([`HeldRows`]).
const HOLD_RESERVATIONS: &str = "headers AS (
             INSERT INTO reservations (tenant_id, reference, status)
             SELECT t, r, 'held' FROM UNNEST($16::uuid[], $17::text[]) AS x(t, r)
             ON CONFLICT (tenant_id, reference) DO UPDATE SET status = 'held', reason = NULL, updated_at = now()
         ), held_items AS (
             INSERT INTO reservation_items (tenant_id, reference, sku, location, quantity)
             SELECT * FROM UNNEST($18::uuid[], $19::text[], $20::text[], $21::text[], $22::bigint[])
             ON CONFLICT DO NOTHING
         ), ";

/// Granted reservations as the statement's arrays: the headers, and one item per stock row.
#[derive(Default)]
struct HeldRows<'a> {
    tenants: Vec<Uuid>,
    references: Vec<&'a str>,
    item_tenants: Vec<Uuid>,
    item_references: Vec<&'a str>,
    item_skus: Vec<&'a str>,
    item_locations: Vec<&'a str>,
    item_quantities: Vec<i64>,
}

impl<'a> HeldRows<'a> {
    fn of(jobs: &[&'a ReserveJob]) -> Self {
        let mut rows = HeldRows::default();
        for job in jobs {
            rows.tenants.push(job.tenant_id);
            rows.references.push(job.reference.as_str());
            let mut merged: HashMap<&StockKey, i64> = HashMap::new();
            for line in &job.lines {
                *merged.entry(&line.key).or_default() += line.quantity;
            }
            for (key, quantity) in merged {
                rows.item_tenants.push(job.tenant_id);
                rows.item_references.push(job.reference.as_str());
                rows.item_skus.push(key.sku.as_str());
                rows.item_locations.push(key.location.as_str());
                rows.item_quantities.push(quantity);
            }
        }
        rows
    }
}

pub struct LedgerRow {
    pub tenant_id: Uuid,
    pub key: StockKey,
    pub on_hand_delta: i64,
    pub reserved_delta: i64,
    pub reason: &'static str,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub actor: Option<String>,
}

/// Releases, commits or restocks a reservation, once. Stock moves only on `Change::Apply`.
pub async fn change_reservation(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
    reference: &str,
    wanted: Status,
    reason: Option<&str>,
    actor: &str,
) -> Result<Reservation, ChangeError> {
    // The reference's lock first, as a reservation batch takes it: a batch locks stock rows
    // before the header, this the header before stock rows, and the shared lock keeps the two
    // orders from deadlocking.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || ':' || $2, 0))")
        .bind(tenant_id)
        .bind(reference)
        .execute(&mut *conn)
        .await
        .map_err(DbError::from)?;
    let mut reservation = get_reservation(conn, tenant_id, reference, true).await?.ok_or(ChangeError::NotFound)?;
    let (rule, ledger_reason): (fn(Status) -> Change, &'static str) = match wanted {
        Status::Released => (reservations::release, "release"),
        Status::Committed => (reservations::commit, "commit"),
        Status::Restocked => (reservations::restock, "restock"),
        Status::Held => return Err(ChangeError::Refused { current: reservation.status.as_str(), wanted: "held" }),
    };
    match rule(reservation.status) {
        Change::AlreadyDone => return Ok(reservation),
        Change::Refuse => {
            return Err(ChangeError::Refused { current: reservation.status.as_str(), wanted: wanted.as_str() });
        }
        Change::Apply => {}
    }
    // (on_hand, reserved) movement per unit.
    let (on_hand_sign, reserved_sign) = match wanted {
        Status::Released => (0, -1),
        Status::Committed => (-1, -1),
        Status::Restocked => (1, 0),
        Status::Held => (0, 0),
    };
    let mut keys: Vec<(Uuid, StockKey)> = reservation.lines.iter().map(|l| (tenant_id, l.key.clone())).collect();
    keys.sort();
    let locked = lock_levels(conn, &keys).await?;
    let deltas: Vec<(Uuid, &StockKey, i64, i64)> = reservation
        .lines
        .iter()
        .map(|l| (tenant_id, &l.key, on_hand_sign * l.quantity, reserved_sign * l.quantity))
        .collect();
    let ledger: Vec<LedgerRow> = reservation
        .lines
        .iter()
        .map(|l| LedgerRow {
            tenant_id,
            key: l.key.clone(),
            on_hand_delta: on_hand_sign * l.quantity,
            reserved_delta: reserved_sign * l.quantity,
            reason: ledger_reason,
            reference: Some(reference.to_string()),
            note: reason.map(str::to_string),
            actor: Some(actor.to_string()),
        })
        .collect();
    apply_deltas(conn, namespace, &locked, deltas, &ledger, &[]).await?;
    sqlx::query(
        "UPDATE reservations SET status = $3, reason = $4, updated_at = now() WHERE tenant_id = $1 AND reference = $2",
    )
    .bind(tenant_id)
    .bind(reference)
    .bind(wanted.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    let event = ReservationChanged {
        reference: reference.to_string(),
        status: wanted.as_str().to_string(),
        reason: reason.map(str::to_string),
    };
    bus::outbox::enqueue(conn, namespace, Envelope::new(tenant_id, format!("reservation:{reference}"), event, None))
        .await
        .map_err(DbError::from)?;
    reservation.status = wanted;
    Ok(reservation)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    pub key: StockKey,
    pub on_hand: i64,
    pub reserved: i64,
    pub threshold: i64,
}

pub async fn levels(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    skus: &[String],
    location: &str,
) -> Result<Vec<StockRow>, DbError> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT s.sku, s.location, s.on_hand, s.reserved, coalesce(s.low_stock_threshold, st.default_low_stock_threshold, 0)
         FROM stock_levels s LEFT JOIN settings st ON st.tenant_id = s.tenant_id
         WHERE s.tenant_id = $1 AND s.sku = ANY($2) AND s.location = $3 ORDER BY s.sku",
    )
    .bind(tenant_id)
    .bind(skus)
    .bind(location)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sku, location, on_hand, reserved, threshold)| StockRow {
            key: StockKey { sku, location },
            on_hand,
            reserved,
            threshold,
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    #[error("sku is not in the catalog")]
    UnknownSku,
    #[error("on hand would fall below what is reserved ({reserved}) or below zero")]
    BelowReserved { reserved: i64 },
    #[error("{0}")]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for AdjustError {
    fn from(err: sqlx::Error) -> Self {
        AdjustError::Database(err.into())
    }
}

pub enum Adjustment {
    Delta(i64),
    Counted(i64),
}

/// Changes on-hand stock with a reason; idempotent per `idempotency_key`.
#[allow(clippy::too_many_arguments)]
pub async fn adjust(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
    key: &StockKey,
    adjustment: Adjustment,
    reason: &'static str,
    note: Option<&str>,
    idempotency_key: Option<&str>,
    actor: &str,
) -> Result<StockRow, AdjustError> {
    let in_catalog: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM catalog_items WHERE tenant_id = $1 AND sku = $2)")
            .bind(tenant_id)
            .bind(&key.sku)
            .fetch_one(&mut *conn)
            .await?;
    if !in_catalog {
        return Err(AdjustError::UnknownSku);
    }
    sqlx::query("INSERT INTO stock_levels (tenant_id, sku, location) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(tenant_id)
        .bind(&key.sku)
        .bind(&key.location)
        .execute(&mut *conn)
        .await?;
    // The row lock comes before the idempotency check, so concurrent retries of one adjustment
    // queue here and the later ones find the key.
    let locked = lock_levels(conn, &[(tenant_id, key.clone())]).await?;
    let Some((Level { on_hand, reserved }, _)) = locked.get(&(tenant_id, key.clone())).copied() else {
        return Err(AdjustError::UnknownSku);
    };
    if let Some(idempotency_key) = idempotency_key {
        let seen: Option<i64> =
            sqlx::query_scalar("SELECT ledger_id FROM stock_adjustments WHERE tenant_id = $1 AND idempotency_key = $2")
                .bind(tenant_id)
                .bind(idempotency_key)
                .fetch_optional(&mut *conn)
                .await?;
        if seen.is_some() {
            return levels(conn, tenant_id, std::slice::from_ref(&key.sku), &key.location)
                .await?
                .pop()
                .ok_or(AdjustError::UnknownSku);
        }
    }
    let delta = match adjustment {
        Adjustment::Delta(delta) => delta,
        Adjustment::Counted(counted) => counted - on_hand,
    };
    if on_hand + delta < reserved || on_hand + delta < 0 {
        return Err(AdjustError::BelowReserved { reserved });
    }
    let ledger_id = apply_deltas(
        conn,
        namespace,
        &locked,
        vec![(tenant_id, key, delta, 0)],
        &[LedgerRow {
            tenant_id,
            key: key.clone(),
            on_hand_delta: delta,
            reserved_delta: 0,
            reason,
            reference: None,
            note: note.map(str::to_string),
            actor: Some(actor.to_string()),
        }],
        &[],
    )
    .await?;
    if let (Some(idempotency_key), Some(ledger_id)) = (idempotency_key, ledger_id.first()) {
        sqlx::query("INSERT INTO stock_adjustments (tenant_id, idempotency_key, ledger_id) VALUES ($1, $2, $3)")
            .bind(tenant_id)
            .bind(idempotency_key)
            .bind(ledger_id)
            .execute(&mut *conn)
            .await?;
    }
    levels(conn, tenant_id, std::slice::from_ref(&key.sku), &key.location).await?.pop().ok_or(AdjustError::UnknownSku)
}

/// Re-checks every stock row that follows the tenant's default threshold, after that default
/// changed: a row now below it alerts once, a row no longer below it alerts again on its next dip.
/// Rows with a threshold of their own are left alone. Returns how many rows were checked.
pub async fn recheck_default_threshold(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
) -> Result<usize, DbError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT sku, location FROM stock_levels WHERE tenant_id = $1 AND low_stock_threshold IS NULL")
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
    // Locked in the order reservation batches lock them (sorted here, not by the database's
    // collation), so a concurrent batch waits instead of deadlocking.
    let mut keys: Vec<(Uuid, StockKey)> =
        rows.into_iter().map(|(sku, location)| (tenant_id, StockKey { sku, location })).collect();
    keys.sort();
    let locked = lock_levels(conn, &keys).await?;
    let deltas = keys.iter().map(|(tenant, key)| (*tenant, key, 0, 0)).collect();
    apply_deltas(conn, namespace, &locked, deltas, &[], &[]).await?;
    Ok(keys.len())
}

pub async fn set_threshold(
    conn: &mut PgConnection,
    namespace: &Namespace,
    tenant_id: Uuid,
    key: &StockKey,
    threshold: i64,
) -> Result<StockRow, AdjustError> {
    let in_catalog: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM catalog_items WHERE tenant_id = $1 AND sku = $2)")
            .bind(tenant_id)
            .bind(&key.sku)
            .fetch_one(&mut *conn)
            .await?;
    if !in_catalog {
        return Err(AdjustError::UnknownSku);
    }
    sqlx::query(
        "INSERT INTO stock_levels (tenant_id, sku, location, low_stock_threshold) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, sku, location) DO UPDATE SET low_stock_threshold = $4, updated_at = now()",
    )
    .bind(tenant_id)
    .bind(&key.sku)
    .bind(&key.location)
    .bind(threshold)
    .execute(&mut *conn)
    .await?;
    // No stock moves; the row is re-checked against its new threshold.
    let locked = lock_levels(conn, &[(tenant_id, key.clone())]).await?;
    apply_deltas(conn, namespace, &locked, vec![(tenant_id, key, 0, 0)], &[], &[]).await?;
    levels(conn, tenant_id, std::slice::from_ref(&key.sku), &key.location).await?.pop().ok_or(AdjustError::UnknownSku)
}
