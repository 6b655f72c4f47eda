//! Durable pull consumers: explicit ack, idempotent through the inbox, bounded redelivery with
//! backoff, then the dead-letter stream. A message is acked only after its effect committed, and
//! is never dropped: it is processed, redelivered, or parked in the dead-letter stream with why.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::publisher::{Outgoing, headers};
use crate::{Bus, Envelope, Error};

/// What a handler tells the consumer about a failure.
#[derive(Debug, thiserror::Error)]
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

/// Counts each message's outcome: processed, duplicate, retried, dead_lettered.
#[derive(Clone, Default)]
pub struct ConsumerMetrics {
    outcomes: Family<OutcomeLabels, Counter>,
}

impl ConsumerMetrics {
    pub fn register(&self, metrics: &telemetry::Metrics) {
        metrics.with_registry(|registry| {
            registry.register("bus_consumer_messages", "Messages handled by outcome", self.outcomes.clone())
        });
    }

    fn count(&self, consumer: &str, outcome: &'static str) {
        self.outcomes.get_or_create(&OutcomeLabels { consumer: consumer.to_string(), outcome }).inc();
    }
}

/// Creates (or updates) the durable consumer and processes messages until `token` is cancelled.
/// On cancellation it stops fetching, lets every lane finish its message in flight, and returns.
pub async fn run<H: Handler>(
    bus: Bus,
    pool: PgPool,
    spec: ConsumerSpec,
    handler: Arc<H>,
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
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (tx, mut rx) = mpsc::channel::<async_nats::jetstream::Message>(32);
        senders.push(tx);
        let worker = Worker {
            bus: bus.clone(),
            pool: pool.clone(),
            name: spec.name.clone(),
            handler: handler.clone(),
            metrics: metrics.clone(),
        };
        workers.spawn(async move {
            while let Some(message) = rx.recv().await {
                worker.process(message).await;
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

struct Worker<H> {
    bus: Bus,
    pool: PgPool,
    name: String,
    handler: Arc<H>,
    metrics: ConsumerMetrics,
}

enum Outcome {
    Processed,
    Duplicate,
}

impl<H: Handler> Worker<H> {
    async fn process(&self, message: async_nats::jetstream::Message) {
        let (delivered, stream_sequence) = message
            .info()
            .map(|info| (u32::try_from(info.delivered).unwrap_or(u32::MAX), info.stream_sequence))
            .unwrap_or((1, 0));
        if delivered > self.bus.config().max_deliver {
            // Delivered this often without an answer: the consumer likely crashed on it each time.
            let reason = format!("delivered {delivered} times without being handled (the consumer may crash on it)");
            return self.dead_letter(&message, &reason, delivered, stream_sequence).await;
        }
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(err) => {
                let reason = format!("not an orderflow envelope: {err}");
                return self.dead_letter(&message, &reason, delivered, stream_sequence).await;
            }
        };
        let span = tracing::info_span!("consume", consumer = %self.name, event_type = %envelope.event_type, event_id = %envelope.id);
        let trace: Vec<(String, String)> = envelope.trace.clone().into_iter().collect();
        telemetry::propagation::set_parent(&span, &trace);

        match tracing::Instrument::instrument(self.apply(&envelope), span).await {
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
                tracing::warn!(%reason, delivered, ?delay, "handler failed; will be redelivered");
                self.metrics.count(&self.name, "retried");
                if let Err(err) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %err, "nak failed; JetStream redelivers after ack_wait");
                }
            }
            Err(HandlerError::Transient(reason)) => {
                let reason = format!("gave up after {delivered} deliveries: {reason}");
                self.dead_letter(&message, &reason, delivered, stream_sequence).await;
            }
            Err(HandlerError::Permanent(reason)) => {
                self.dead_letter(&message, &reason, delivered, stream_sequence).await;
            }
        }
    }

    /// The inbox row and the effect commit together, or neither does.
    async fn apply(&self, envelope: &Envelope) -> Result<Outcome, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&self.name)
            .bind(envelope.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&mut tx, envelope).await?;
        tx.commit().await?;
        if failpoints::any_armed() {
            failpoints::hit(&format!("bus.consumer.after_commit:{}", self.name));
        }
        Ok(Outcome::Processed)
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
