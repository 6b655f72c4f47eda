//! Durable pull consumers: explicit ack, idempotent through the inbox, bounded redelivery with
//! backoff, then the dead-letter stream. A message is acked only after its effect committed, and
//! is never dropped: it is processed, redelivered, or parked in the dead-letter stream with why.
//!
//! A [`Handler`] takes one event per transaction ([`run`]). A [`BatchHandler`] takes whatever a
//! lane has waiting, up to a limit, in one transaction ([`run_batched`]): one durable commit costs
//! about 3 ms here, so one commit per message caps a consumer near a few hundred messages per
//! second per lane. Every event of a batch still gets its own inbox row in that transaction and
//! its own ack, nak or dead letter; one that fails on its own does not fail the others.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::publisher::{Outgoing, headers};
use crate::{Bus, Envelope, Error};

/// What a handler tells the consumer about a failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again later (a dependency is down, a conflict): redelivered with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed (invalid data, a broken invariant): dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(err: sqlx::Error) -> Self {
        match db::classify(&err) {
            db::DbErrorKind::Unavailable | db::DbErrorKind::Conflict => HandlerError::Transient(err.to_string()),
            db::DbErrorKind::UniqueViolation | db::DbErrorKind::ConstraintViolation | db::DbErrorKind::Other => {
                HandlerError::Permanent(err.to_string())
            }
        }
    }
}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        match resilience::Classify::retryability(&err) {
            resilience::Retryability::Transient => HandlerError::Transient(err.to_string()),
            resilience::Retryability::Permanent => HandlerError::Permanent(err.to_string()),
        }
    }
}

/// Applies one event's effect inside the consumer's transaction (which also records the inbox row).
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;

    /// `false` for an event this handler would do nothing with: it is acked without a
    /// transaction or an inbox row (there is no effect to make idempotent). A subject filter
    /// cannot tell, e.g. inventory needs only the `order.created` events without a reservation.
    /// Say `true` when unsure (an event that does not decode included): `handle` decides then.
    fn wants(&self, _event: &Envelope) -> bool {
        true
    }
}

/// What [`BatchHandler::handle_batch`] answers when the transaction is still usable: one result
/// per event, in order.
pub type BatchResults = Vec<Result<(), HandlerError>>;

/// Applies several events' effects inside one transaction (which also records their inbox rows).
pub trait BatchHandler: Send + Sync + 'static {
    /// `events` are new to this consumer (duplicates are already filtered out), in delivery order;
    /// one aggregate's events keep their order, so a later event sees what an earlier one wrote.
    ///
    /// `Ok(results)`: the transaction is still usable. An event whose result is an error must
    /// have written nothing; it alone is retried or dead-lettered and the others commit.
    /// `Err`: the transaction is unusable (a statement failed); the consumer rolls it back and
    /// handles each event again in a transaction of its own, so only the culprit fails.
    fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Envelope],
    ) -> impl Future<Output = Result<BatchResults, HandlerError>> + Send + 'a;

    /// As [`Handler::wants`].
    fn wants(&self, _event: &Envelope) -> bool {
        true
    }
}

/// A [`Handler`] as a [`BatchHandler`]: the batch's events in turn, in one transaction. The first
/// error leaves the transaction unusable, so the consumer runs that batch again one event per
/// transaction and only the culprit fails. [`run`] uses it with batches of one.
pub struct OneAtATime<H>(pub Arc<H>);

impl<H: Handler> BatchHandler for OneAtATime<H> {
    async fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Envelope],
    ) -> Result<BatchResults, HandlerError> {
        for event in events {
            self.0.handle(tx, event).await?;
        }
        Ok(events.iter().map(|_| Ok(())).collect())
    }

    fn wants(&self, event: &Envelope) -> bool {
        self.0.wants(event)
    }
}

/// One durable consumer of one service.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name, also the inbox key and the dead-letter subject suffix, e.g. `draft-messages`.
    pub name: String,
    /// The domain whose stream is read.
    pub domain: &'static str,
    pub filter_subjects: Vec<String>,
    /// Messages processed at once; one aggregate's messages always share a lane, in order.
    pub lanes: usize,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    consumer: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
}

/// Counts each message's outcome (processed, duplicate, retried, dead_lettered) and how many
/// messages each lane batch held: a batch near `max_batch` means the lanes are falling behind.
#[derive(Clone)]
pub struct ConsumerMetrics {
    outcomes: Family<OutcomeLabels, Counter>,
    batch_sizes: Family<ConsumerLabels, Histogram, fn() -> Histogram>,
}

impl Default for ConsumerMetrics {
    fn default() -> Self {
        Self {
            outcomes: Family::default(),
            batch_sizes: Family::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 2.0, 8))),
        }
    }
}

impl ConsumerMetrics {
    pub fn register(&self, metrics: &telemetry::Metrics) {
        metrics.with_registry(|registry| {
            registry.register("bus_consumer_messages", "Messages handled by outcome", self.outcomes.clone());
            registry.register(
                "bus_consumer_batch_size",
                "Messages handled together in one lane batch",
                self.batch_sizes.clone(),
            );
        });
    }

    fn count(&self, consumer: &str, outcome: &'static str) {
        self.outcomes.get_or_create(&OutcomeLabels { consumer: consumer.to_string(), outcome }).inc();
    }

    fn batch(&self, consumer: &str, size: usize) {
        self.batch_sizes.get_or_create(&ConsumerLabels { consumer: consumer.to_string() }).observe(size as f64);
    }
}

/// Creates (or updates) the durable consumer and processes messages, one per transaction, until
/// `token` is cancelled. On cancellation it stops fetching, lets every lane finish its message in
/// flight, and returns.
pub async fn run<H: Handler>(
    bus: Bus,
    pool: PgPool,
    spec: ConsumerSpec,
    handler: Arc<H>,
    metrics: ConsumerMetrics,
    token: CancellationToken,
) -> Result<(), Error> {
    run_batched(bus, pool, spec, 1, Arc::new(OneAtATime(handler)), metrics, token).await
}

/// As [`run`], but each lane hands whatever it has waiting, up to `max_batch` messages, to the
/// handler in one transaction. Under light load a batch is one message, so latency stays low.
pub async fn run_batched<B: BatchHandler>(
    bus: Bus,
    pool: PgPool,
    spec: ConsumerSpec,
    max_batch: usize,
    handler: Arc<B>,
    metrics: ConsumerMetrics,
    token: CancellationToken,
) -> Result<(), Error> {
    if !crate::streams::ensure_all_eventually(&bus, &token).await {
        return Ok(());
    }
    let config = bus.config().clone();
    let stream_name = config.namespace.stream_name(spec.domain);
    let consumer_config = pull::Config {
        durable_name: Some(spec.name.clone()),
        description: Some(format!("orderflow consumer {}", spec.name)),
        filter_subjects: spec.filter_subjects.clone(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: config.ack_wait,
        // Unlimited on the server: the consumer itself dead-letters after `max_deliver`, so a
        // message that keeps crashing the process is parked, never silently dropped.
        max_deliver: -1,
        max_ack_pending: 1024,
        ..Default::default()
    };
    let stream = bus
        .jetstream()
        .get_stream(&stream_name)
        .await
        .map_err(|err| Error::JetStream(format!("get stream {stream_name}: {err}")))?;
    let consumer = match stream.create_consumer(consumer_config.clone()).await {
        Ok(consumer) => consumer,
        Err(_) => stream
            .update_consumer(consumer_config)
            .await
            .map_err(|err| Error::JetStream(format!("create consumer {}: {err}", spec.name)))?,
    };

    let lanes = spec.lanes.max(1);
    let max_batch = max_batch.max(1);
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (tx, mut rx) = mpsc::channel::<async_nats::jetstream::Message>(32.max(2 * max_batch));
        senders.push(tx);
        let worker = Worker {
            bus: bus.clone(),
            pool: pool.clone(),
            name: spec.name.clone(),
            handler: handler.clone(),
            metrics: metrics.clone(),
        };
        workers.spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match rx.try_recv() {
                        Ok(message) => batch.push(message),
                        Err(_) => break,
                    }
                }
                worker.process(batch).await;
            }
        });
    }

    'fetch: while !token.is_cancelled() {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(64)
            .heartbeat(std::time::Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(consumer = %spec.name, error = %err, "cannot pull messages; retrying");
                tokio::select! {
                    _ = token.cancelled() => break 'fetch,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue 'fetch,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = token.cancelled() => break 'fetch,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let lane = lane_of(&message, lanes);
                    if senders[lane].send(message).await.is_err() {
                        break 'fetch;
                    }
                }
                Some(Err(err)) => {
                    // Missed heartbeats or a reconnect: JetStream redelivers anything unacked.
                    tracing::warn!(consumer = %spec.name, error = %err, "pull stream interrupted; resubscribing");
                    continue 'fetch;
                }
                None => continue 'fetch,
            }
        }
    }
    // Stop intake, then let the lanes drain what they already hold.
    drop(senders);
    while workers.join_next().await.is_some() {}
    Ok(())
}

fn lane_of(message: &async_nats::jetstream::Message, lanes: usize) -> usize {
    if lanes == 1 {
        return 0;
    }
    let key = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::PARTITION_KEY))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| message.subject.to_string());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

struct Worker<B> {
    bus: Bus,
    pool: PgPool,
    name: String,
    handler: Arc<B>,
    metrics: ConsumerMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Processed,
    Duplicate,
}

/// Why a batch's transaction did not commit.
enum Failed {
    /// Not the events' doing (Postgres unreachable, the commit failed): every event gets it.
    Batch(HandlerError),
    /// The handler broke the transaction: one of the events may be the culprit.
    Handler(HandlerError),
}

impl Failed {
    fn batch(err: sqlx::Error) -> Self {
        Failed::Batch(err.into())
    }
}

/// A message of a batch that is an envelope and may still be handled.
struct Delivery {
    message: async_nats::jetstream::Message,
    envelope: Envelope,
    delivered: u32,
    stream_sequence: u64,
}

impl<B: BatchHandler> Worker<B> {
    async fn process(&self, batch: Vec<async_nats::jetstream::Message>) {
        self.metrics.batch(&self.name, batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for message in batch {
            let (delivered, stream_sequence) = message
                .info()
                .map(|info| (u32::try_from(info.delivered).unwrap_or(u32::MAX), info.stream_sequence))
                .unwrap_or((1, 0));
            if delivered > self.bus.config().max_deliver {
                // Delivered this often without an answer: the consumer likely crashed on it each time.
                let reason =
                    format!("delivered {delivered} times without being handled (the consumer may crash on it)");
                self.dead_letter(&message, &reason, delivered, stream_sequence).await;
                continue;
            }
            match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(envelope) if !self.handler.wants(&envelope) => {
                    self.metrics.count(&self.name, "ignored");
                    if let Err(err) = message.ack().await {
                        tracing::warn!(error = %err, "ack of an ignored event failed; JetStream redelivers it");
                    }
                }
                Ok(envelope) => deliveries.push(Delivery { message, envelope, delivered, stream_sequence }),
                Err(err) => {
                    let reason = format!("not an orderflow envelope: {err}");
                    self.dead_letter(&message, &reason, delivered, stream_sequence).await;
                }
            }
        }
        if deliveries.is_empty() {
            return;
        }

        let span = match deliveries.as_slice() {
            [one] => {
                let span = tracing::info_span!("consume", consumer = %self.name, event_type = %one.envelope.event_type, event_id = %one.envelope.id);
                let trace: Vec<(String, String)> = one.envelope.trace.clone().into_iter().collect();
                telemetry::propagation::set_parent(&span, &trace);
                span
            }
            many => {
                let span = tracing::info_span!("consume", consumer = %self.name, events = many.len());
                let traces: Vec<Vec<(String, String)>> =
                    many.iter().map(|d| d.envelope.trace.clone().into_iter().collect()).collect();
                telemetry::propagation::add_links(&span, traces.iter().map(Vec::as_slice));
                span
            }
        };
        let envelopes: Vec<&Envelope> = deliveries.iter().map(|d| &d.envelope).collect();
        let outcomes = tracing::Instrument::instrument(self.apply(&envelopes), span).await;
        for (delivery, outcome) in deliveries.iter().zip(outcomes) {
            self.settle(delivery, outcome).await;
        }
    }

    /// Acks, naks with backoff, or dead-letters one message after its batch committed or failed.
    async fn settle(&self, delivery: &Delivery, outcome: Result<Outcome, HandlerError>) {
        let Delivery { message, delivered, stream_sequence, .. } = delivery;
        let (delivered, stream_sequence) = (*delivered, *stream_sequence);
        match outcome {
            Ok(outcome) => {
                let label = match outcome {
                    Outcome::Processed => "processed",
                    Outcome::Duplicate => "duplicate",
                };
                self.metrics.count(&self.name, label);
                if let Err(err) = message.ack().await {
                    // The effect is committed; a redelivery will be recognised by the inbox.
                    tracing::warn!(error = %err, "ack failed after commit");
                }
            }
            Err(HandlerError::Transient(reason)) if delivered < self.bus.config().max_deliver => {
                let delay = self.bus.config().backoff_after(delivered);
                tracing::warn!(consumer = %self.name, event_id = %delivery.envelope.id, %reason, delivered, ?delay, "handler failed; will be redelivered");
                self.metrics.count(&self.name, "retried");
                if let Err(err) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %err, "nak failed; JetStream redelivers after ack_wait");
                }
            }
            Err(HandlerError::Transient(reason)) => {
                let reason = format!("gave up after {delivered} deliveries: {reason}");
                self.dead_letter(message, &reason, delivered, stream_sequence).await;
            }
            Err(HandlerError::Permanent(reason)) => {
                self.dead_letter(message, &reason, delivered, stream_sequence).await;
            }
        }
    }

    /// One outcome per envelope. The same event twice in one batch is handled once: the copy
    /// shares the first one's fate (a duplicate when it committed, its error when it failed).
    async fn apply(&self, envelopes: &[&Envelope]) -> Vec<Result<Outcome, HandlerError>> {
        let mut unique: Vec<&Envelope> = Vec::with_capacity(envelopes.len());
        let mut first_of: HashMap<Uuid, usize> = HashMap::new();
        let slots: Vec<(usize, bool)> = envelopes
            .iter()
            .map(|envelope| match first_of.get(&envelope.id) {
                Some(&slot) => (slot, true),
                None => {
                    first_of.insert(envelope.id, unique.len());
                    unique.push(envelope);
                    (unique.len() - 1, false)
                }
            })
            .collect();
        let outcomes = match self.apply_once(&unique).await {
            Ok(outcomes) => outcomes,
            Err(Failed::Batch(err)) => unique.iter().map(|_| Err(err.clone())).collect(),
            Err(Failed::Handler(err)) if unique.len() == 1 => vec![Err(err)],
            Err(Failed::Handler(err)) => {
                // Something in the batch broke the transaction: each event alone, so that only
                // the culprit fails.
                tracing::debug!(consumer = %self.name, error = %err, events = unique.len(), "batch failed; handling its events one by one");
                let mut outcomes = Vec::with_capacity(unique.len());
                for envelope in &unique {
                    outcomes.push(match self.apply_once(std::slice::from_ref(envelope)).await {
                        Ok(mut one) => one.pop().unwrap_or(Err(HandlerError::Permanent("no outcome".into()))),
                        Err(Failed::Batch(err) | Failed::Handler(err)) => Err(err),
                    });
                }
                outcomes
            }
        };
        slots
            .into_iter()
            .map(|(slot, copy)| match (&outcomes[slot], copy) {
                (Ok(_), true) => Ok(Outcome::Duplicate),
                (outcome, _) => outcome.clone(),
            })
            .collect()
    }

    /// The inbox rows and the effects commit together, or none does. One outcome per envelope
    /// unless the transaction as a whole failed.
    async fn apply_once(&self, envelopes: &[&Envelope]) -> Result<Vec<Result<Outcome, HandlerError>>, Failed> {
        let mut tx = self.pool.begin().await.map_err(Failed::batch)?;
        let ids: Vec<Uuid> = envelopes.iter().map(|e| e.id).collect();
        let inserted: HashSet<Uuid> = sqlx::query_scalar(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(&self.name)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(Failed::batch)?
        .into_iter()
        .collect();
        let fresh: Vec<&Envelope> = envelopes.iter().copied().filter(|e| inserted.contains(&e.id)).collect();
        if fresh.is_empty() {
            return Ok(envelopes.iter().map(|_| Ok(Outcome::Duplicate)).collect());
        }
        let results = self.handler.handle_batch(&mut tx, &fresh).await.map_err(Failed::Handler)?;
        if results.len() != fresh.len() {
            return Err(Failed::Handler(HandlerError::Permanent(format!(
                "handler answered {} results for {} events",
                results.len(),
                fresh.len()
            ))));
        }
        let mut by_id: HashMap<Uuid, Result<(), HandlerError>> = fresh.iter().map(|e| e.id).zip(results).collect();
        let failed: Vec<Uuid> = by_id.iter().filter(|(_, r)| r.is_err()).map(|(id, _)| *id).collect();
        if !failed.is_empty() {
            // Their inbox rows go too, so that their redelivery is handled, not taken as a duplicate.
            sqlx::query("DELETE FROM inbox WHERE consumer = $1 AND event_id = ANY($2)")
                .bind(&self.name)
                .bind(&failed)
                .execute(&mut *tx)
                .await
                .map_err(|err| Failed::Handler(err.into()))?;
        }
        tx.commit().await.map_err(Failed::batch)?;
        if failpoints::any_armed() {
            failpoints::hit(&format!("bus.consumer.after_commit:{}", self.name));
        }
        Ok(envelopes
            .iter()
            .map(|e| match by_id.remove(&e.id) {
                Some(Ok(())) => Ok(Outcome::Processed),
                Some(Err(err)) => Err(err),
                None => Ok(Outcome::Duplicate),
            })
            .collect())
    }

    async fn dead_letter(
        &self,
        message: &async_nats::jetstream::Message,
        reason: &str,
        delivered: u32,
        stream_sequence: u64,
    ) {
        tracing::error!(consumer = %self.name, %reason, subject = %message.subject, stream_sequence, "dead-lettering message");
        let subject = self.bus.config().namespace.dead_letter_subject(&self.name);
        let message_id = format!("dlq:{}:{}", self.name, stream_sequence);
        let partition_key = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::PARTITION_KEY))
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let published = self
            .bus
            .publish(Outgoing {
                subject: &subject,
                message_id: &message_id,
                partition_key: &partition_key,
                payload: message.payload.clone(),
                extra_headers: vec![
                    (headers::DLQ_REASON.to_string(), truncate(reason, 1024)),
                    (headers::DLQ_CONSUMER.to_string(), self.name.clone()),
                    (headers::DLQ_ORIGINAL_SUBJECT.to_string(), message.subject.to_string()),
                    (headers::DLQ_ORIGINAL_SEQUENCE.to_string(), stream_sequence.to_string()),
                    (headers::DLQ_DELIVERIES.to_string(), delivered.to_string()),
                ],
            })
            .await;
        match published {
            Ok(()) => {
                self.metrics.count(&self.name, "dead_lettered");
                if let Err(err) = message.ack_with(AckKind::Term).await {
                    // Redelivered later and dead-lettered again under the same message id.
                    tracing::warn!(error = %err, "term after dead-lettering failed");
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "dead-letter publish failed; the message stays pending");
                let _ = message.ack_with(AckKind::Nak(Some(self.bus.config().backoff_after(delivered)))).await;
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    // Header values are single lines.
    let single_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    single_line.chars().take(max).collect()
}
