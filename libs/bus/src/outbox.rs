//! The transactional outbox: [`enqueue`] inside the state change's transaction, and the [`Relay`]
//! that publishes committed rows to JetStream in commit order.
//!
//! One relay per schema publishes at a time (a Postgres advisory lock elects it), so the events of
//! one aggregate leave in the order they were committed. A crash between publishing and marking a
//! row published makes the next relay publish it again; `Nats-Msg-Id` de-duplicates that within
//! the duplicate window and consumers' inboxes beyond it.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::publisher::Outgoing;
use crate::{Bus, Envelope, Error, Event, Namespace};

/// One message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub subject: String,
    /// Becomes `Nats-Msg-Id`.
    pub message_id: Uuid,
    pub partition_key: String,
    pub payload: String,
    /// Published as message headers (trace context, dead-letter reasons).
    pub headers: Vec<(String, String)>,
}

impl OutboxRow {
    /// The row for an event: its subject, and its trace context as headers.
    pub fn for_event<T: Event>(namespace: &Namespace, envelope: Envelope<T>) -> Result<Self, Error> {
        let subject = envelope.subject(namespace);
        let envelope = envelope.into_untyped()?;
        Ok(Self {
            subject,
            message_id: envelope.id,
            partition_key: envelope.aggregate_id.clone(),
            headers: envelope.trace.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            payload: serde_json::to_string(&envelope)?,
        })
    }
}

/// Writes an event to the outbox; it is published once the surrounding transaction commits.
pub async fn enqueue<T: Event>(
    conn: &mut PgConnection,
    namespace: &Namespace,
    envelope: Envelope<T>,
) -> Result<(), Error> {
    enqueue_many(conn, &[OutboxRow::for_event(namespace, envelope)?]).await
}

/// Enqueues many rows in one statement (batched commits). An id already in the outbox is the
/// same event enqueued again (a replay, a redelivered webhook): it is kept once.
pub async fn enqueue_many(conn: &mut PgConnection, rows: &[OutboxRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns = Columns::of(rows);
    let statement = columns.insert(1);
    columns.bind(sqlx::query(&statement)).execute(conn).await?;
    Ok(())
}

/// Outbox rows as the column arrays of one `INSERT`, for a statement that writes its events
/// alongside its own change (a CTE) and so saves a round trip in a batch that runs thousands of
/// times a second. Rows built with [`Columns::owned`] carry the id of what they are about, so
/// that the statement keeps only the rows of what its change really touched.
pub struct Columns<'a> {
    subjects: Vec<&'a str>,
    ids: Vec<Uuid>,
    keys: Vec<&'a str>,
    payloads: Vec<&'a str>,
    headers: Vec<serde_json::Value>,
    owners: Option<Vec<Uuid>>,
}

impl<'a> Columns<'a> {
    pub fn of(rows: &'a [OutboxRow]) -> Self {
        Self::build(rows.iter(), None)
    }

    /// Each row with the id of its owner (the draft, the order) as `e.owner`.
    pub fn owned(rows: &'a [(Uuid, OutboxRow)]) -> Self {
        Self::build(rows.iter().map(|(_, row)| row), Some(rows.iter().map(|(owner, _)| *owner).collect()))
    }

    fn build(rows: impl Iterator<Item = &'a OutboxRow> + Clone, owners: Option<Vec<Uuid>>) -> Self {
        Self {
            subjects: rows.clone().map(|r| r.subject.as_str()).collect(),
            ids: rows.clone().map(|r| r.message_id).collect(),
            keys: rows.clone().map(|r| r.partition_key.as_str()).collect(),
            payloads: rows.clone().map(|r| r.payload.as_str()).collect(),
            headers: rows
                .map(|r| {
                    serde_json::Value::Object(r.headers.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect())
                })
                .collect(),
            owners,
        }
    }

    /// The `INSERT` of every row, taking the arrays as parameters `$first` onwards.
    pub fn insert(&self, first: usize) -> String {
        self.insert_where(first, "")
    }

    /// The `INSERT` of the rows `filter` keeps: a `WHERE` clause over `e`, which has the
    /// columns `subject`, `event_id`, `partition_key`, `payload`, `headers` and, for
    /// [`Columns::owned`] rows, `owner`.
    pub fn insert_where(&self, first: usize, filter: &str) -> String {
        let (owner_array, owner_column) = match self.owners {
            Some(_) => (format!(", ${}::uuid[]", first + 5), ", owner"),
            None => (String::new(), ""),
        };
        format!(
            "INSERT INTO outbox (subject, event_id, partition_key, payload, headers)
             SELECT e.subject, e.event_id, e.partition_key, e.payload, e.headers
             FROM UNNEST(${}::text[], ${}::uuid[], ${}::text[], ${}::text[], ${}::jsonb[]{owner_array})
               AS e(subject, event_id, partition_key, payload, headers{owner_column})
             {filter}
             ON CONFLICT (event_id) DO NOTHING",
            first,
            first + 1,
            first + 2,
            first + 3,
            first + 4
        )
    }

    /// Binds the arrays, in the order [`Columns::insert`] numbers them, after what `query` has.
    pub fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        let query = query.bind(self.subjects).bind(self.ids).bind(self.keys).bind(self.payloads).bind(self.headers);
        match self.owners {
            Some(owners) => query.bind(owners),
            None => query,
        }
    }
}

/// Counters exported on `/metrics`.
#[derive(Clone, Default)]
pub struct RelayMetrics {
    pub published: Counter,
    pub publish_failures: Counter,
    pub backlog: Gauge,
}

impl RelayMetrics {
    pub fn register(&self, metrics: &telemetry::Metrics) {
        metrics.with_registry(|registry| {
            registry.register("outbox_published", "Outbox rows published to JetStream", self.published.clone());
            registry.register(
                "outbox_publish_failures",
                "Relay batches that failed to publish (retried)",
                self.publish_failures.clone(),
            );
            registry.register("outbox_backlog", "Unpublished outbox rows seen by the relay", self.backlog.clone());
        });
    }
}

/// Publishes committed outbox rows and prunes old outbox and inbox rows.
pub struct Relay {
    pool: PgPool,
    bus: Bus,
    batch_size: i64,
    metrics: RelayMetrics,
    retry: resilience::RetryPolicy,
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Relay {
    pub fn new(pool: PgPool, bus: Bus, metrics: RelayMetrics) -> Self {
        let retry = bus.config().publish_retry;
        Self { pool, bus, batch_size: 256, metrics, retry }
    }

    /// Runs until `token` is cancelled; the batch in flight is finished first.
    pub async fn run(self, token: CancellationToken) {
        if !crate::streams::ensure_all_eventually(&self.bus, &token).await {
            return;
        }
        let poll = self.bus.config().relay_poll;
        let mut last_prune = Instant::now().checked_sub(PRUNE_EVERY).unwrap_or_else(Instant::now);
        while !token.is_cancelled() {
            let idle = match self.lead_once(&token, &mut last_prune).await {
                Ok(idle) => idle,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay: lost its connection or leadership; retrying");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(poll.max(Duration::from_millis(200))) => {}
                }
            }
        }
    }

    /// Holds the leader lock on one connection and relays until told to stop or an error occurs.
    /// Returns true when another relay is the leader.
    async fn lead_once(&self, token: &CancellationToken, last_prune: &mut Instant) -> Result<bool, Error> {
        let mut leader = self.pool.acquire().await?;
        let is_leader: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext(current_schema() || '.outbox_relay'))")
                .fetch_one(&mut *leader)
                .await?;
        if !is_leader {
            return Ok(true);
        }
        let result = self.relay_while_leader(&mut leader, token, last_prune).await;
        // Dropping the connection would also release the lock; unlock so a peer takes over at once.
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext(current_schema() || '.outbox_relay'))")
            .execute(&mut *leader)
            .await;
        result.map(|()| false)
    }

    async fn relay_while_leader(
        &self,
        conn: &mut PgConnection,
        token: &CancellationToken,
        last_prune: &mut Instant,
    ) -> Result<(), Error> {
        let (poll, linger) = (self.bus.config().relay_poll, self.bus.config().relay_linger);
        while !token.is_cancelled() {
            if last_prune.elapsed() >= PRUNE_EVERY {
                prune(conn, self.bus.config()).await?;
                *last_prune = Instant::now();
            }
            let published = self.relay_batch(conn).await?;
            let pause = match published {
                0 => poll,
                some if (some as i64) < self.batch_size => linger,
                _ => Duration::ZERO,
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        Ok(())
    }

    /// Publishes one batch of unpublished rows; returns how many were published.
    async fn relay_batch(&self, conn: &mut PgConnection) -> Result<usize, Error> {
        // Planned on every poll (the pool's `plan_cache_mode`): a plan cached while the outbox
        // was empty is a sequential scan, which reads every retained published row on each poll.
        let rows = sqlx::query(
            "SELECT seq, event_id, subject, partition_key, payload, headers FROM outbox
             WHERE published_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *conn)
        .await?;
        let backlog = if rows.len() as i64 == self.batch_size {
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&mut *conn).await?
        } else {
            i64::try_from(rows.len()).unwrap_or(i64::MAX)
        };
        self.metrics.backlog.set(backlog);
        if rows.is_empty() {
            return Ok(0);
        }
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let id: Uuid = row.try_get("event_id")?;
            let subject: String = row.try_get("subject")?;
            let key: String = row.try_get("partition_key")?;
            let payload: String = row.try_get("payload")?;
            let headers: serde_json::Value = row.try_get("headers")?;
            let headers: Vec<(String, String)> = headers
                .as_object()
                .map(|map| map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            messages.push((seq, id.to_string(), subject, key, payload, headers));
        }

        // Publish in seq order; on a failure, retry the unacknowledged tail with the shared policy.
        let acked = std::sync::atomic::AtomicUsize::new(0);
        let outcome = self
            .retry
            .retry("publish outbox batch", || async {
                let start = acked.load(std::sync::atomic::Ordering::SeqCst);
                let batch = messages[start..]
                    .iter()
                    .map(|(_, id, subject, key, payload, headers)| Outgoing {
                        subject,
                        message_id: id,
                        partition_key: key,
                        payload: bytes::Bytes::copy_from_slice(payload.as_bytes()),
                        extra_headers: headers.clone(),
                    })
                    .collect();
                let (count, error) = self.bus.publish_batch(batch).await;
                acked.fetch_add(count, std::sync::atomic::Ordering::SeqCst);
                match error {
                    None => Ok(()),
                    Some(err) => {
                        self.metrics.publish_failures.inc();
                        if matches!(err, Error::NoStream(_)) {
                            // NATS came back without its data: declare the streams again.
                            let _ = crate::streams::ensure_all(&self.bus).await;
                        }
                        Err(err)
                    }
                }
            })
            .await;
        let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
        if acked > 0 {
            // The mark is bookkeeping, not a fact to keep: committed without waiting for the disk
            // flush, so the relay does not compete with the services' own commits for it. A crash
            // that loses it republishes those rows, which `Nats-Msg-Id` and the consumers' inbox
            // already absorb. One round trip (a multi-statement query is one implicit transaction,
            // which SET LOCAL applies to); the seqs are integers, safe to inline.
            let seqs: Vec<String> = messages[..acked].iter().map(|(seq, ..)| seq.to_string()).collect();
            let mark = format!(
                "SET LOCAL synchronous_commit = off;
                 UPDATE outbox SET published_at = now() WHERE seq = ANY('{{{}}}'::bigint[])",
                seqs.join(",")
            );
            sqlx::Executor::execute(&mut *conn, mark.as_str()).await?;
            self.metrics.published.inc_by(acked as u64);
        }
        match outcome {
            Ok(()) => Ok(acked),
            Err(err) => {
                tracing::warn!(error = %err, unpublished = messages.len() - acked, "outbox relay: publishing failed; will retry");
                // Not an error of the leader connection: keep the lock, back off via the poll.
                Ok(acked)
            }
        }
    }
}

/// Deletes published outbox rows and inbox records past their retention.
pub async fn prune(conn: &mut PgConnection, config: &crate::BusConfig) -> Result<(u64, u64), Error> {
    let outbox = sqlx::query("DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)")
        .bind(config.outbox_retention.as_secs_f64())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let inbox = sqlx::query("DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)")
        .bind(config.inbox_retention.as_secs_f64())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if outbox + inbox > 0 {
        tracing::info!(outbox, inbox, "pruned published outbox rows and old inbox records");
    }
    Ok((outbox, inbox))
}
