//! The approval's own writes, for many drafts in one transaction: ApproveDraft calls arrive
//! concurrently and each needs two durable steps here (taking the lease, then marking the draft
//! approved), so they go through group commits ([`crate::approve`]) instead of a commit each.

use std::collections::HashMap;

use bus::outbox::{Columns, OutboxRow};
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;
use super::drafts::{COLUMNS, DraftRecord, from_row, load_items_of};

/// The drafts with these ids, locked (in id order, so batches cannot deadlock), with their items:
/// two queries for the whole batch.
pub async fn lock_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, DraftRecord>, DbError> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM drafts WHERE id = ANY($1) ORDER BY id FOR UPDATE"))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut drafts: Vec<DraftRecord> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    load_items_of(conn, &mut drafts).await?;
    Ok(drafts.into_iter().map(|draft| (draft.id, draft)).collect())
}

/// A draft whose approval starts: it becomes `approving`, leased to the approver.
pub struct Start<'a> {
    pub id: Uuid,
    pub reference: &'a str,
    pub approved_by: &'a str,
}

/// Flips the drafts to `approving` under `owner`'s lease; returns when the lease runs out.
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
    let references: Vec<&str> = starts.iter().map(|s| s.reference).collect();
    let users: Vec<&str> = starts.iter().map(|s| s.approved_by).collect();
    // `d.id = ANY($1)` besides the join: the plan probes the primary key instead of scanning drafts.
    let rows: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
        "UPDATE drafts d SET status = 'approving', lease_owner = $4, lease_until = now() + make_interval(secs => $5),
           reservation_reference = u.reference, approved_by = u.approved_by,
           approval_attempts = d.approval_attempts + 1, last_error = NULL, updated_at = now()
         FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS u(id, reference, approved_by)
         WHERE d.id = u.id AND d.id = ANY($1)
         RETURNING d.id, d.lease_until",
    )
    .bind(&ids)
    .bind(&references)
    .bind(&users)
    .bind(owner)
    .bind(lease.as_secs_f64())
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
    // The rows are locked first, in id order as `lock_many` takes them, so a concurrent batch
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
