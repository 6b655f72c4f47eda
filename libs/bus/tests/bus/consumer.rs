//! Consumers: exactly one effect per event under redelivery, duplicates and crashes; poison
//! messages dead-lettered with their reason; one aggregate's events handled in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{ConsumerSpec, Envelope, Handler, HandlerError, Outgoing};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Harness, Ticked, WAIT, tick};

/// Effects keyed by `n`: 0..100 succeed; 100..200 fail once, transiently; 500 always fails
/// transiently; negative is a permanent failure; 1000 and up are not wanted (no transaction).
#[derive(Default)]
struct TestHandler {
    attempts: Mutex<HashMap<Uuid, u32>>,
}

impl Handler for TestHandler {
    async fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Envelope) -> Result<(), HandlerError> {
        let data = event.decode::<Ticked>().map_err(HandlerError::Permanent)?;
        let attempt = {
            let mut attempts = self.attempts.lock().expect("lock");
            let entry = attempts.entry(event.id).or_default();
            *entry += 1;
            *entry
        };
        match data.n {
            n if n < 0 => {
                return Err(HandlerError::Permanent("negative ticks are invalid".into()));
            }
            500 => return Err(HandlerError::Transient("dependency down".into())),
            100..200 if attempt == 1 => {
                return Err(HandlerError::Transient("first try fails".into()));
            }
            _ => {}
        }
        sqlx::query("INSERT INTO effects (event_id, aggregate, n) VALUES ($1, $2, $3)")
            .bind(event.id)
            .bind(&event.aggregate_id)
            .bind(data.n)
            .execute(tx)
            .await?;
        Ok(())
    }

    fn wants(&self, event: &Envelope) -> bool {
        event.decode::<Ticked>().ok().is_none_or(|data| data.n < 1000)
    }
}

fn start_consumer(h: &Harness, name: &str, lanes: usize) -> CancellationToken {
    let token = CancellationToken::new();
    let spec = ConsumerSpec {
        name: name.to_string(),
        domain: "order",
        filter_subjects: vec![h.ns().event_filter("order", 1, "ticked")],
        lanes,
    };
    tokio::spawn(bus::consumer::run(
        h.bus.clone(),
        h.pool.clone(),
        spec,
        Arc::new(TestHandler::default()),
        Default::default(),
        token.clone(),
    ));
    token
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

async fn settled(h: &Harness, consumer: &str) -> bool {
    let stream = h.bus.jetstream().get_stream(h.ns().stream_name("order")).await.expect("stream");
    // The consumer task may not have created the durable consumer yet.
    let Ok(mut consumer) = stream.get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer).await else {
        return false;
    };
    let info = consumer.info().await.expect("info");
    info.num_pending == 0 && info.num_ack_pending == 0
}

#[tokio::test]
async fn each_event_has_exactly_one_effect() {
    let h = Harness::new().await;
    let token = start_consumer(&h, "once", 2);
    let tenant = Uuid::new_v4();
    for n in 0..10 {
        publish(&h, &tick(tenant, &format!("agg-{n}"), n)).await;
    }
    testkit::eventually("10 effects", WAIT, || async { h.effects().await == 10 }).await;
    testkit::eventually("all acked", WAIT, || async { settled(&h, "once").await }).await;
    token.cancel();
}

#[tokio::test]
async fn an_event_the_handler_does_not_want_is_acked_without_a_transaction() {
    let h = Harness::new().await;
    let token = start_consumer(&h, "picky", 1);
    let tenant = Uuid::new_v4();
    publish(&h, &tick(tenant, "agg", 1000)).await;
    publish(&h, &tick(tenant, "agg", 1)).await;
    testkit::eventually("the wanted one applied", WAIT, || async { h.effects().await == 1 }).await;
    testkit::eventually("both acked", WAIT, || async { settled(&h, "picky").await }).await;
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox").fetch_one(&h.pool).await.expect("inbox");
    assert_eq!((h.effects().await, inbox), (1, 1), "the unwanted event wrote neither an effect nor an inbox row");
    token.cancel();
}

#[tokio::test]
async fn a_failed_handler_is_redelivered_and_succeeds_once() {
    let h = Harness::new().await;
    let token = start_consumer(&h, "retry", 1);
    publish(&h, &tick(Uuid::new_v4(), "agg", 150)).await;
    testkit::eventually("effect after redelivery", WAIT, || async { h.effects().await == 1 }).await;
    testkit::eventually("acked", WAIT, || async { settled(&h, "retry").await }).await;
    assert_eq!(h.effects().await, 1);
    token.cancel();
}

#[tokio::test]
async fn a_duplicate_the_broker_did_not_catch_changes_nothing() {
    let h = Harness::new().await;
    let token = start_consumer(&h, "dupes", 2);
    let event = tick(Uuid::new_v4(), "agg", 7);
    // Same event id under two message ids: e.g. re-published after the duplicate window.
    publish_with_id(&h, &event, "first").await;
    publish_with_id(&h, &event, "second").await;
    testkit::eventually("both handled", WAIT, || async { settled(&h, "dupes").await }).await;
    assert_eq!(h.effects().await, 1);
    token.cancel();
}

#[tokio::test]
async fn a_consumer_killed_between_commit_and_ack_does_not_apply_twice() {
    let h = Harness::new().await;
    let point = "bus.consumer.after_commit:killed";
    failpoints::arm(point, failpoints::Action::Panic);
    let first = start_consumer(&h, "killed", 1);
    publish(&h, &tick(Uuid::new_v4(), "agg", 3)).await;
    testkit::eventually("effect committed", WAIT, || async { h.effects().await == 1 }).await;
    failpoints::disarm(point);
    first.cancel();

    // A new instance gets the unacknowledged message after ack_wait and recognises it.
    let second = start_consumer(&h, "killed", 1);
    testkit::eventually("redelivery acked", WAIT, || async { settled(&h, "killed").await }).await;
    assert_eq!(h.effects().await, 1);
    second.cancel();
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_a_reason() {
    let h = Harness::new().await;
    let token = start_consumer(&h, "poison", 2);
    let tenant = Uuid::new_v4();
    let subject = h.ns().event_subject("order", 1, "ticked", tenant);
    h.bus
        .publish(Outgoing {
            subject: &subject,
            message_id: "garbage",
            partition_key: "g",
            payload: bytes::Bytes::from_static(b"not json"),
            extra_headers: vec![],
        })
        .await
        .expect("publish garbage");
    publish(&h, &tick(tenant, "a", -1)).await;
    publish(&h, &tick(tenant, "b", 500)).await;
    publish(&h, &tick(tenant, "c", 1)).await;

    testkit::eventually("3 dead letters", WAIT, || async { h.stream_messages("dlq").await == 3 }).await;
    testkit::eventually("source settled", WAIT, || async { settled(&h, "poison").await }).await;
    assert_eq!(h.effects().await, 1, "the good message still went through");

    let dlq = h.bus.jetstream().get_stream(h.ns().dead_letter_stream()).await.expect("dlq");
    let mut reasons = Vec::new();
    for seq in 1..=3 {
        let raw = dlq.get_raw_message(seq).await.expect("dead letter");
        assert_eq!(raw.subject.as_str(), h.ns().dead_letter_subject("poison"));
        let reason = raw.headers.get(bus::header_names::DLQ_REASON).expect("reason").to_string();
        let original = raw.headers.get(bus::header_names::DLQ_ORIGINAL_SUBJECT).expect("original").to_string();
        assert_eq!(original, subject);
        reasons.push(reason);
    }
    reasons.sort();
    assert!(reasons.iter().any(|r| r.contains("not an orderflow envelope")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("negative ticks are invalid")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("gave up after 3 deliveries")), "{reasons:?}");
    token.cancel();
}

#[tokio::test]
async fn one_aggregates_events_are_handled_in_order_across_lanes() {
    let h = Harness::new().await;
    let tenant = Uuid::new_v4();
    for n in 0..40 {
        publish(&h, &tick(tenant, &format!("agg-{}", n % 4), n)).await;
    }
    let token = start_consumer(&h, "ordered", 4);
    testkit::eventually("40 effects", WAIT, || async { h.effects().await == 40 }).await;
    let rows: Vec<(String, i32)> =
        sqlx::query_as("SELECT aggregate, n FROM effects ORDER BY at").fetch_all(&h.pool).await.expect("rows");
    for aggregate in 0..4 {
        let ns: Vec<i32> = rows.iter().filter(|(a, _)| *a == format!("agg-{aggregate}")).map(|(_, n)| *n).collect();
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "agg-{aggregate} handled out of order");
    }
    token.cancel();
    let _ = Duration::ZERO;
}
