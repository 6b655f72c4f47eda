//! The approval's own writes, for many drafts in one transaction: ApproveDraft calls arrive
//! concurrently and each needs two durable steps here (taking the lease, then marking the draft
//! approved), so they go through group commits ([`crate::approve`]) instead of a commit each.

use std::collections::HashMap;

use bus::outbox::{Columns, OutboxRow};
use money::{Currency, Money};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::drafts::{COLUMNS, DraftRecord, from_row, load_items_of};
use crate::domain::draft::Item;

/// What taking an approval's lease writes (besides the reservation reference and the approver),
/// in both statements that take one: `$1` is the owner, `$2` the lease in seconds.
const TAKE_LEASE: &str = "status = 'approving', lease_owner = $1, lease_until = now() + make_interval(secs => $2),
    approval_attempts = d.approval_attempts + 1, last_error = NULL, updated_at = now()";

/// A draft as step 1 of its approval found it, locked, with its items.
pub struct Found {
    pub draft: DraftRecord,
    /// Leased by this statement: when the lease runs out, and the reservation reference stored.
    pub lease: Option<(OffsetDateTime, String)>,
}

/// A draft an approval asks for: its id, the caller's tenant and the approving user.
pub struct Ask<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub approved_by: &'a str,
}

/// Step 1 of approval for a batch, in one statement and so one round trip (no transaction):
/// locks the drafts (in id order, so batches cannot deadlock), reads them with their items, and
/// leases to `owner` each one of the caller's tenant that is `pending_review` and can be approved.
/// The rest come back as they are, for the caller to answer.
///
/// A locked row is read at its latest version, however long the lock waited, but the items
/// come from the statement's snapshot, taken before the wait. Every change of items bumps the
/// draft's version in the same transaction, so the version read beside the items tells whether
/// they are the locked draft's. A draft whose items changed during the wait is not leased here:
/// its items are read again, and the caller leases it with [`begin_many`] if it still can start.
///
/// "Can be approved" is checked twice: here in SQL (items, each matched with a price), so that
/// a draft that cannot be approved never shows as `approving`, and by the caller with
/// `domain::draft::approval_blockers`, which stays the rule and words the refusal.
pub async fn lock_and_lease(
    conn: &mut PgConnection,
    asks: &[Ask<'_>],
    owner: &str,
    lease: std::time::Duration,
) -> Result<HashMap<Uuid, Found>, DbError> {
    let mut asks: Vec<&Ask<'_>> = asks.iter().collect();
    asks.sort_by_key(|a| (a.id, a.tenant_id));
    asks.dedup_by_key(|a| (a.id, a.tenant_id));
    let ids: Vec<Uuid> = asks.iter().map(|a| a.id).collect();
    let tenants: Vec<Uuid> = asks.iter().map(|a| a.tenant_id).collect();
    let users: Vec<&str> = asks.iter().map(|a| a.approved_by).collect();
    let rows = sqlx::query(&format!(
        "WITH locked AS MATERIALIZED (SELECT {COLUMNS} FROM drafts WHERE id = ANY($3) ORDER BY id FOR UPDATE),
         items AS MATERIALIZED (
             SELECT l.id AS draft_id, i.* FROM locked l CROSS JOIN LATERAL (
                 SELECT array_agg(original_text ORDER BY position) AS texts, array_agg(sku ORDER BY position) AS skus,
                        array_agg(name ORDER BY position) AS names, array_agg(quantity ORDER BY position) AS quantities,
                        array_agg(unit_price_minor ORDER BY position) AS unit_prices,
                        array_agg(message_price_minor ORDER BY position) AS message_prices,
                        array_agg(confidence ORDER BY position) AS confidences,
                        count(*) > 0 AND bool_and(sku IS NOT NULL AND unit_price_minor IS NOT NULL) AS approvable,
                        (SELECT v.version FROM drafts v WHERE v.id = l.id) AS items_version
                 FROM draft_items WHERE draft_id = l.id
             ) i
         ),
         leased AS (
             UPDATE drafts d SET {TAKE_LEASE},
               reservation_reference = 'draft:' || d.id || ':v' || d.version, approved_by = u.approved_by
             FROM locked l
             JOIN items i ON i.draft_id = l.id
             JOIN UNNEST($3::uuid[], $4::uuid[], $5::text[]) AS u(id, tenant_id, approved_by)
               ON u.id = l.id AND u.tenant_id = l.tenant_id
             WHERE d.id = l.id AND d.id = ANY($3)
               AND l.status = 'pending_review' AND i.items_version = l.version AND i.approvable
             RETURNING d.id, d.lease_until, d.reservation_reference
         )
         SELECT l.*, i.texts, i.skus, i.names, i.quantities, i.unit_prices, i.message_prices, i.confidences,
                i.items_version, s.lease_until AS leased_until, s.reservation_reference AS leased_reference
         FROM locked l JOIN items i ON i.draft_id = l.id LEFT JOIN leased s ON s.id = l.id"
    ))
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(&ids)
    .bind(&tenants)
    .bind(&users)
    .fetch_all(&mut *conn)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    let mut edited_during_the_wait = Vec::new();
    for row in &rows {
        let mut draft = from_row(row)?;
        let leased_until: Option<OffsetDateTime> = row.try_get("leased_until")?;
        let leased_reference: Option<String> = row.try_get("leased_reference")?;
        let lease = leased_until.zip(leased_reference);
        if row.try_get::<Option<i64>, _>("items_version")? == Some(draft.version) {
            draft.items = items_from_arrays(row, draft.currency)?;
            found.insert(draft.id, Found { draft, lease });
        } else {
            edited_during_the_wait.push(draft);
        }
    }
    load_items_of(conn, &mut edited_during_the_wait).await?;
    found.extend(edited_during_the_wait.into_iter().map(|draft| (draft.id, Found { draft, lease: None })));
    Ok(found)
}

/// The items `lock_and_lease` aggregated into one array per column (NULL arrays: no items).
fn items_from_arrays(row: &PgRow, currency: Currency) -> Result<Vec<Item>, DbError> {
    let texts: Vec<String> = row.try_get::<Option<_>, _>("texts")?.unwrap_or_default();
    let skus: Vec<Option<String>> = row.try_get::<Option<_>, _>("skus")?.unwrap_or_default();
    let names: Vec<String> = row.try_get::<Option<_>, _>("names")?.unwrap_or_default();
    let quantities: Vec<i64> = row.try_get::<Option<_>, _>("quantities")?.unwrap_or_default();
    let units: Vec<Option<i64>> = row.try_get::<Option<_>, _>("unit_prices")?.unwrap_or_default();
    let messages: Vec<Option<i64>> = row.try_get::<Option<_>, _>("message_prices")?.unwrap_or_default();
    let confidences: Vec<f32> = row.try_get::<Option<_>, _>("confidences")?.unwrap_or_default();
    let lengths = [skus.len(), names.len(), quantities.len(), units.len(), messages.len(), confidences.len()];
    if lengths.iter().any(|&n| n != texts.len()) {
        return Err(DbError::Internal("draft item arrays of different lengths".into()));
    }
    Ok((0..texts.len())
        .map(|n| Item {
            original_text: texts[n].clone(),
            sku: skus[n].clone(),
            name: names[n].clone(),
            quantity: quantities[n],
            unit_price: units[n].map(|minor| Money::new(minor, currency)),
            message_price: messages[n].map(|minor| Money::new(minor, currency)),
            confidence: confidences[n],
        })
        .collect())
}

/// A draft whose approval starts: it becomes `approving`, leased to the approver.
pub struct Start<'a> {
    pub id: Uuid,
    /// The version the caller decided on; a draft changed since is left alone.
    pub version: i64,
    pub reference: &'a str,
    pub approved_by: &'a str,
}

/// Flips the drafts that are still `pending_review` at the given versions to `approving` under
/// `owner`'s lease; returns, for those, when the lease runs out. For the few drafts
/// [`lock_and_lease`] could not lease at once (their items changed while it waited), and for a
/// trusted customer's draft, auto-approved in the transaction that wrote it.
pub async fn begin_many(
    conn: &mut PgConnection,
    starts: &[Start<'_>],
    owner: &str,
    lease: std::time::Duration,
) -> Result<HashMap<Uuid, OffsetDateTime>, DbError> {
    if starts.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = starts.iter().map(|s| s.id).collect();
    let versions: Vec<i64> = starts.iter().map(|s| s.version).collect();
    let references: Vec<&str> = starts.iter().map(|s| s.reference).collect();
    let users: Vec<&str> = starts.iter().map(|s| s.approved_by).collect();
    // `d.id = ANY($3)` besides the join: the plan probes the primary key instead of scanning drafts.
    let rows: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(&format!(
        "UPDATE drafts d SET {TAKE_LEASE}, reservation_reference = u.reference, approved_by = u.approved_by
         FROM UNNEST($3::uuid[], $4::bigint[], $5::text[], $6::text[]) AS u(id, version, reference, approved_by)
         WHERE d.id = u.id AND d.id = ANY($3) AND d.status = 'pending_review' AND d.version = u.version
         RETURNING d.id, d.lease_until"
    ))
    .bind(owner)
    .bind(lease.as_secs_f64())
    .bind(&ids)
    .bind(&versions)
    .bind(&references)
    .bind(&users)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A draft whose order exists, and its `draft.approved` event.
pub struct Finish<'a> {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_code: &'a str,
    pub event: OutboxRow,
}

/// Marks approved the drafts `owner` still holds the lease of, with their events, in one
/// statement; returns, for those, the new version and update time. A draft missing from the
/// answer was finished by someone else, and its event is not written.
pub async fn finish_many(
    conn: &mut PgConnection,
    finishes: &[Finish<'_>],
    owner: &str,
) -> Result<HashMap<Uuid, (i64, OffsetDateTime)>, DbError> {
    if finishes.is_empty() {
        return Ok(HashMap::new());
    }
    let mut sorted: Vec<&Finish<'_>> = finishes.iter().collect();
    sorted.sort_by_key(|f| f.id);
    let ids: Vec<Uuid> = sorted.iter().map(|f| f.id).collect();
    let order_ids: Vec<Uuid> = sorted.iter().map(|f| f.order_id).collect();
    let codes: Vec<&str> = sorted.iter().map(|f| f.order_code).collect();
    let events: Vec<(Uuid, OutboxRow)> = sorted.iter().map(|f| (f.id, f.event.clone())).collect();
    let events = Columns::owned(&events);
    // The rows are locked first, in id order as `lock_and_lease` takes them, so a concurrent batch
    // cannot deadlock with this one (an UPDATE alone locks in whatever order its plan meets rows).
    let statement = format!(
        "WITH locked AS MATERIALIZED (SELECT id FROM drafts WHERE id = ANY($1) ORDER BY id FOR UPDATE),
         finished AS (
             UPDATE drafts d SET status = 'approved', order_id = u.order_id, order_code = u.order_code,
               lease_owner = NULL, lease_until = NULL, version = d.version + 1, updated_at = now()
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS u(id, order_id, order_code)
             WHERE d.id = u.id AND d.id = ANY($1) AND d.id IN (SELECT id FROM locked)
               AND d.status = 'approving' AND d.lease_owner = $4
             RETURNING d.id, d.version, d.updated_at
         ),
         events AS ({})
         SELECT id, version, updated_at FROM finished",
        events.insert_where(5, "WHERE e.owner IN (SELECT id FROM finished)")
    );
    let query = sqlx::query(&statement).bind(&ids).bind(&order_ids).bind(&codes).bind(owner);
    let rows = events.bind(query).fetch_all(conn).await?;
    rows.iter().map(|row| Ok((row.try_get("id")?, (row.try_get("version")?, row.try_get("updated_at")?)))).collect()
}
