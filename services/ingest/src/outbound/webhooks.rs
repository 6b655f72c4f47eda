//! Storing accepted webhooks: one transaction for a batch of POSTs that writes the raw archive,
//! the de-duplication records and the outbox rows (or dead-letter parks) together.
//!
//! Nothing is answered 200 before this commit: a crash before it loses nothing the platform will
//! not send again, a crash after it loses nothing at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use bus::outbox::OutboxRow;
use bus::{Envelope, Event, Namespace};
use bytes::Bytes;
use events::ingest::Platform;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{ChannelRef, IngestEvent, Normalized};

/// One verified, parsed webhook POST.
#[derive(Debug)]
pub struct Submission {
    pub platform: Platform,
    pub body: Bytes,
    pub events: Vec<Normalized>,
    /// The W3C trace context of the request, carried into every event it produces.
    pub trace: BTreeMap<String, String>,
}

/// What became of one submission's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// New events enqueued for publishing.
    pub published: usize,
    /// Events seen before (a redelivery), which produce nothing.
    pub duplicates: usize,
    /// Events for an unknown or disabled channel, parked on the dead-letter subject.
    pub parked: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Postgres cannot commit: answer 503 so the platform retries.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("storing webhooks failed: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match db::classify(&err) {
            db::DbErrorKind::Unavailable | db::DbErrorKind::Conflict => Error::Unavailable(err.to_string()),
            db::DbErrorKind::UniqueViolation | db::DbErrorKind::ConstraintViolation | db::DbErrorKind::Other => {
                Error::Internal(err.to_string())
            }
        }
    }
}

impl From<bus::Error> for Error {
    fn from(err: bus::Error) -> Self {
        match err {
            bus::Error::Database(err) => err.into(),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Why an event was parked instead of published.
#[derive(Debug, Clone, Copy)]
enum ParkReason {
    UnknownChannel,
    DisabledChannel,
}

impl ParkReason {
    fn as_str(self) -> &'static str {
        match self {
            ParkReason::UnknownChannel => "unknown channel",
            ParkReason::DisabledChannel => "channel disabled",
        }
    }
}

/// The dead-letter subject suffix for parked webhook events (`{ns}.dlq.ingest.parked`); the
/// `Orderflow-Dlq-Reason` header says why.
pub const PARKED_CONSUMER: &str = "ingest.parked";

/// Stores a batch of submissions in one transaction; returns one outcome per submission.
pub async fn store_batch(pool: &PgPool, namespace: &Namespace, batch: &[Submission]) -> Result<Vec<Outcome>, Error> {
    let mut tx = pool.begin().await?;
    let routes = load_routes(&mut tx, batch).await?;

    // The first occurrence of each key in the batch is the candidate; the insert decides.
    let mut seen_in_batch = HashSet::new();
    let mut candidates: Vec<(usize, &Normalized)> = Vec::new();
    let mut outcomes = vec![Outcome::default(); batch.len()];
    for (index, submission) in batch.iter().enumerate() {
        for event in &submission.events {
            if seen_in_batch.insert(event.dedupe_key.as_str()) {
                candidates.push((index, event));
            } else {
                outcomes[index].duplicates += 1;
            }
        }
    }
    let keys: Vec<&str> = candidates.iter().map(|(_, e)| e.dedupe_key.as_str()).collect();
    let ids: Vec<Uuid> = candidates.iter().map(|(_, e)| e.event_id()).collect();
    let inserted: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO webhook_dedupe (key, event_id) SELECT * FROM UNNEST($1::text[], $2::uuid[])
         ON CONFLICT (key) DO NOTHING RETURNING key",
    )
    .bind(&keys)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();

    let mut rows = Vec::with_capacity(inserted.len());
    for (index, event) in candidates {
        if !inserted.contains(&event.dedupe_key) {
            outcomes[index].duplicates += 1;
            continue;
        }
        match routes.get(&event.channel) {
            Some(Route { tenant_id, enabled: true }) => {
                rows.push(outbox_row(namespace, *tenant_id, event, &batch[index].trace)?);
                outcomes[index].published += 1;
            }
            Some(Route { enabled: false, .. }) => {
                rows.push(park_row(namespace, event, ParkReason::DisabledChannel, &batch[index].trace)?);
                outcomes[index].parked += 1;
            }
            None => {
                rows.push(park_row(namespace, event, ParkReason::UnknownChannel, &batch[index].trace)?);
                outcomes[index].parked += 1;
            }
        }
    }
    bus::outbox::enqueue_many(&mut tx, &rows).await?;

    let archive_ids: Vec<Uuid> = batch.iter().map(|_| Uuid::now_v7()).collect();
    let platforms: Vec<&str> = batch.iter().map(|s| s.platform.as_str()).collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|s| s.body.as_ref()).collect();
    let counts = |f: fn(&Outcome) -> usize| -> Vec<i32> {
        outcomes.iter().map(|o| i32::try_from(f(o)).unwrap_or(i32::MAX)).collect()
    };
    sqlx::query(
        "INSERT INTO raw_payloads (id, platform, body, events, duplicates, parked)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::int[], $5::int[], $6::int[])",
    )
    .bind(&archive_ids)
    .bind(&platforms)
    .bind(&bodies)
    .bind(counts(|o| o.published))
    .bind(counts(|o| o.duplicates))
    .bind(counts(|o| o.parked))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outcomes)
}

struct Route {
    tenant_id: Uuid,
    enabled: bool,
}

async fn load_routes(tx: &mut sqlx::PgConnection, batch: &[Submission]) -> Result<HashMap<ChannelRef, Route>, Error> {
    let mut wanted: HashSet<&ChannelRef> = HashSet::new();
    for event in batch.iter().flat_map(|s| &s.events) {
        wanted.insert(&event.channel);
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let platforms: Vec<&str> = wanted.iter().map(|c| c.platform.as_str()).collect();
    let external_ids: Vec<&str> = wanted.iter().map(|c| c.external_id.as_str()).collect();
    let rows: Vec<(String, String, Uuid, bool)> = sqlx::query_as(
        "SELECT c.platform, c.external_id, c.tenant_id, c.enabled FROM channels c
         JOIN UNNEST($1::text[], $2::text[]) AS w(platform, external_id)
           ON c.platform = w.platform AND c.external_id = w.external_id",
    )
    .bind(&platforms)
    .bind(&external_ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(platform, external_id, tenant_id, enabled)| {
            let platform = Platform::parse(&platform)?;
            Some((ChannelRef { platform, external_id }, Route { tenant_id, enabled }))
        })
        .collect())
}

fn envelope<T: Event>(tenant_id: Uuid, event: &Normalized, data: T, trace: &BTreeMap<String, String>) -> Envelope<T> {
    let mut envelope = Envelope::new(tenant_id, event.partition_key.clone(), data, None);
    envelope.id = event.event_id();
    envelope.correlation_id = envelope.id;
    // The committer runs outside the request's span: carry the request's trace context over.
    envelope.trace = trace.clone();
    envelope
}

fn outbox_row(
    namespace: &Namespace,
    tenant_id: Uuid,
    event: &Normalized,
    trace: &BTreeMap<String, String>,
) -> Result<OutboxRow, Error> {
    let row = match &event.event {
        IngestEvent::Message(data) => OutboxRow::for_event(namespace, envelope(tenant_id, event, data.clone(), trace)),
        IngestEvent::Status(data) => OutboxRow::for_event(namespace, envelope(tenant_id, event, data.clone(), trace)),
        IngestEvent::Echo(data) => OutboxRow::for_event(namespace, envelope(tenant_id, event, data.clone(), trace)),
        IngestEvent::Tiktok(data) => OutboxRow::for_event(namespace, envelope(tenant_id, event, data.clone(), trace)),
    };
    Ok(row?)
}

fn park_row(
    namespace: &Namespace,
    event: &Normalized,
    reason: ParkReason,
    trace: &BTreeMap<String, String>,
) -> Result<OutboxRow, Error> {
    // The event as it would have been published, for nobody's tenant, under the parked subject.
    let mut row = outbox_row(namespace, Uuid::nil(), event, trace)?;
    let original_subject = std::mem::replace(&mut row.subject, namespace.dead_letter_subject(PARKED_CONSUMER));
    row.message_id = Uuid::new_v5(&row.message_id, b"parked");
    row.headers.extend([
        (bus::header_names::DLQ_REASON.to_string(), reason.as_str().to_string()),
        (bus::header_names::DLQ_CONSUMER.to_string(), PARKED_CONSUMER.to_string()),
        (bus::header_names::DLQ_ORIGINAL_SUBJECT.to_string(), original_subject),
        ("Orderflow-Platform".to_string(), event.channel.platform.as_str().to_string()),
        ("Orderflow-Channel-Id".to_string(), event.channel.external_id.clone()),
    ]);
    Ok(row)
}

/// Deletes archived payloads and de-duplication records past their retention.
pub async fn prune(
    pool: &PgPool,
    archive_retention: std::time::Duration,
    dedupe_retention: std::time::Duration,
) -> Result<(u64, u64), Error> {
    let archived = sqlx::query("DELETE FROM raw_payloads WHERE received_at < now() - make_interval(secs => $1)")
        .bind(archive_retention.as_secs_f64())
        .execute(pool)
        .await?
        .rows_affected();
    let dedupe = sqlx::query("DELETE FROM webhook_dedupe WHERE first_seen_at < now() - make_interval(secs => $1)")
        .bind(dedupe_retention.as_secs_f64())
        .execute(pool)
        .await?
        .rows_affected();
    Ok((archived, dedupe))
}
