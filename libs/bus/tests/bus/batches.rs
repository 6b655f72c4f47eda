//! Batched consumers: several messages in one transaction, each still with its own inbox row and
//! its own ack, nak or dead letter; a message that fails does not take the others with it.
//!
//! The first message holds its batch open until the test has published the rest and JetStream has
//! delivered them, so they wait in the lane and are handed over together as the next batch.

use std::sync::{Arc, Mutex};

use bus::consumer::BatchResults;
use bus::{BatchHandler, ConsumerSpec, Envelope, HandlerError, Outgoing};
use sqlx::PgConnection;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Harness, Ticked, WAIT, tick};

/// `n`: 0 is the gate; negative fails permanently on its own; 500 always fails transiently on
/// its own; 666 breaks the transaction (a failing statement); anything else writes its effect.
struct Batches {
    gate: Mutex<Option<oneshot::Receiver<()>>>,
    entered: Notify,
    /// The `n`s of each batch handed over, in order.
    seen: Mutex<Vec<Vec<i32>>>,
}

impl Batches {
    fn new(release: oneshot::Receiver<()>) -> Self {
        Self { gate: Mutex::new(Some(release)), entered: Notify::new(), seen: Mutex::default() }
    }

    fn batches(&self) -> Vec<Vec<i32>> {
        self.seen.lock().expect("lock").clone()
    }
}

impl BatchHandler for Batches {
    async fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Envelope],
    ) -> Result<BatchResults, HandlerError> {
        let ticks: Vec<i32> = events.iter().map(|e| e.decode::<Ticked>().map(|t| t.n).unwrap_or(i32::MIN)).collect();
        self.seen.lock().expect("lock").push(ticks.clone());
        if ticks.contains(&0) {
            let gate = self.gate.lock().expect("lock").take();
            if let Some(gate) = gate {
                self.entered.notify_one();
                let _ = gate.await;
            }
        }
        let mut results = Vec::with_capacity(events.len());
        for (event, n) in events.iter().zip(ticks) {
            results.push(match n {
                n if n < 0 => Err(HandlerError::Permanent("negative ticks are invalid".into())),
                500 => Err(HandlerError::Transient("dependency down".into())),
                666 => {
                    sqlx::query("SELECT 1 / 0").execute(&mut *tx).await?;
                    Ok(())
                }
                n => {
                    sqlx::query("INSERT INTO effects (event_id, aggregate, n) VALUES ($1, $2, $3)")
                        .bind(event.id)
                        .bind(&event.aggregate_id)
                        .bind(n)
                        .execute(&mut *tx)
                        .await?;
                    Ok(())
                }
            });
        }
        Ok(results)
    }
}

struct Gated {
    handler: Arc<Batches>,
    release: Option<oneshot::Sender<()>>,
    token: CancellationToken,
    name: String,
}

/// A one-lane batched consumer whose first batch (the gate, `n` = 0) is being handled.
async fn gated_consumer(h: &Harness, name: &str) -> Gated {
    let (release, gate) = oneshot::channel();
    let handler = Arc::new(Batches::new(gate));
    let token = CancellationToken::new();
    let spec = ConsumerSpec {
        name: name.to_string(),
        domain: "order",
        filter_subjects: vec![h.ns().event_filter("order", 1, "ticked")],
        lanes: 1,
    };
    let entered = handler.entered.notified();
    tokio::spawn(bus::consumer::run_batched(
        h.bus.clone(),
        h.pool.clone(),
        spec,
        16,
        handler.clone(),
        Default::default(),
        token.clone(),
    ));
    publish(h, &tick(Uuid::new_v4(), "gate", 0)).await;
    tokio::time::timeout(WAIT, entered).await.expect("the gate's batch started");
    Gated { handler, release: Some(release), token, name: name.to_string() }
}

impl Gated {
    /// Lets the gate's batch finish once JetStream has handed `waiting` more messages over.
    async fn release_when_delivered(&mut self, h: &Harness, waiting: usize) {
        testkit::eventually("messages delivered to the consumer", WAIT, || async {
            consumer_info(h, &self.name)
                .await
                .is_some_and(|(pending, ack_pending)| pending == 0 && ack_pending == waiting + 1)
        })
        .await;
        let _ = self.release.take().expect("released once").send(());
    }
}

async fn publish_with_id(h: &Harness, envelope: &Envelope<Ticked>, message_id: &str) {
    let payload = serde_json::to_vec(envelope).expect("json");
    h.bus
        .publish(Outgoing {
            subject: &envelope.subject(h.ns()),
            message_id,
            partition_key: &envelope.aggregate_id,
            payload: payload.into(),
            extra_headers: vec![],
        })
        .await
        .expect("publish");
}

async fn publish(h: &Harness, envelope: &Envelope<Ticked>) {
    publish_with_id(h, envelope, &envelope.id.to_string()).await;
}

/// (pending, waiting for an ack) of the durable consumer.
async fn consumer_info(h: &Harness, name: &str) -> Option<(u64, usize)> {
    let stream = h.bus.jetstream().get_stream(h.ns().stream_name("order")).await.expect("stream");
    let mut consumer = stream.get_consumer::<async_nats::jetstream::consumer::pull::Config>(name).await.ok()?;
    let info = consumer.info().await.ok()?;
    Some((info.num_pending, info.num_ack_pending))
}

async fn settled(h: &Harness, name: &str) -> bool {
    consumer_info(h, name).await == Some((0, 0))
}

async fn effects(h: &Harness) -> Vec<i32> {
    sqlx::query_scalar("SELECT n FROM effects ORDER BY n").fetch_all(&h.pool).await.expect("effects")
}

async fn inbox_rows(h: &Harness, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = $1")
        .bind(name)
        .fetch_one(&h.pool)
        .await
        .expect("inbox")
}

async fn dead_letter_reasons(h: &Harness, count: u64) -> Vec<String> {
    let dlq = h.bus.jetstream().get_stream(h.ns().dead_letter_stream()).await.expect("dlq");
    let mut reasons = Vec::new();
    for seq in 1..=count {
        let raw = dlq.get_raw_message(seq).await.expect("dead letter");
        reasons.push(raw.headers.get(bus::header_names::DLQ_REASON).expect("reason").to_string());
    }
    reasons
}

#[tokio::test]
async fn poison_messages_in_a_batch_fail_alone_and_the_others_commit() {
    let h = Harness::new().await;
    let mut consumer = gated_consumer(&h, "batch-poison").await;
    let tenant = Uuid::new_v4();
    let ticks = [1, -1, 2, 666, 3, 500, 4];
    for (i, n) in ticks.iter().enumerate() {
        publish(&h, &tick(tenant, &format!("agg-{i}"), *n)).await;
    }
    consumer.release_when_delivered(&h, ticks.len()).await;

    testkit::eventually("3 dead letters", WAIT, || async { h.stream_messages("dlq").await == 3 }).await;
    testkit::eventually("source settled", WAIT, || async { settled(&h, "batch-poison").await }).await;
    assert_eq!(effects(&h).await, vec![0, 1, 2, 3, 4], "every good message committed once");
    assert_eq!(inbox_rows(&h, "batch-poison").await, 5, "no inbox row for a message that failed");

    let batches = consumer.handler.batches();
    assert_eq!(batches[1], ticks.to_vec(), "the rest came as one batch: {batches:?}");
    let reasons = dead_letter_reasons(&h, 3).await;
    assert!(reasons.iter().any(|r| r.contains("negative ticks are invalid")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("division by zero")), "{reasons:?}");
    // Redelivered and handed to the handler each time (not taken for a duplicate), then given up.
    assert!(reasons.iter().any(|r| r.contains("gave up after 3 deliveries")), "{reasons:?}");
    consumer.token.cancel();
}

#[tokio::test]
async fn the_same_event_twice_in_one_batch_has_one_effect_and_both_are_acked() {
    let h = Harness::new().await;
    let mut consumer = gated_consumer(&h, "batch-dupes").await;
    let tenant = Uuid::new_v4();
    let twice = tick(tenant, "agg", 7);
    // Same event id under two message ids: e.g. re-published after the duplicate window.
    publish_with_id(&h, &twice, "first").await;
    publish(&h, &tick(tenant, "other", 8)).await;
    publish_with_id(&h, &twice, "second").await;
    consumer.release_when_delivered(&h, 3).await;

    testkit::eventually("all acked", WAIT, || async { settled(&h, "batch-dupes").await }).await;
    assert_eq!(effects(&h).await, vec![0, 7, 8]);
    let batches = consumer.handler.batches();
    assert_eq!(batches[1], vec![7, 8], "the copy never reached the handler: {batches:?}");
    assert_eq!(h.stream_messages("dlq").await, 0);
    consumer.token.cancel();
}
