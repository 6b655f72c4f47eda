//! The outbox relay: committed rows are published once, in commit order; rolled-back rows never;
//! a crash between publishing and marking does not duplicate; a NATS outage only delays.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Harness, WAIT, tick};

fn start_relay(h: &Harness) -> CancellationToken {
    let token = CancellationToken::new();
    let relay = bus::outbox::Relay::new(h.pool.clone(), h.bus.clone(), Default::default());
    tokio::spawn(relay.run(token.clone()));
    token
}

async fn unpublished(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&h.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn committed_events_are_published_once_in_commit_order_and_rolled_back_ones_never() {
    let h = Harness::new().await;
    let tenant = Uuid::new_v4();
    h.commit_events((1..=5).map(|n| tick(tenant, "agg", n)).collect()).await;
    {
        let mut tx = h.pool.begin().await.expect("begin");
        bus::outbox::enqueue(&mut tx, h.ns(), tick(tenant, "agg", 99)).await.expect("enqueue");
        tx.rollback().await.expect("rollback");
    }
    let token = start_relay(&h);
    testkit::eventually("5 events published", WAIT, || async { h.stream_messages("order").await == 5 }).await;
    assert_eq!(unpublished(&h).await, 0);

    // Read them back in stream order: commit order, and the rolled-back one is absent.
    let stream = h.bus.jetstream().get_stream(h.ns().stream_name("order")).await.expect("stream");
    let mut seen = Vec::new();
    for seq in 1..=5 {
        let raw = stream.get_raw_message(seq).await.expect("message");
        let envelope: bus::Envelope = serde_json::from_slice(&raw.payload).expect("envelope");
        seen.push(envelope.decode::<crate::Ticked>().expect("typed").n);
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    token.cancel();
}

#[tokio::test]
async fn a_crash_between_publish_and_mark_publishes_nothing_twice() {
    let h = Harness::new().await;
    let tenant = Uuid::new_v4();
    h.commit_events((1..=3).map(|n| tick(tenant, "agg", n)).collect()).await;
    let token = start_relay(&h);
    testkit::eventually("3 published", WAIT, || async { h.stream_messages("order").await == 3 }).await;
    token.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // As if the relay died after the PubAcks but before its UPDATE committed.
    sqlx::query("UPDATE outbox SET published_at = NULL").execute(&h.pool).await.expect("reset");
    let token = start_relay(&h);
    testkit::eventually("rows marked again", WAIT, || async { unpublished(&h).await == 0 }).await;
    assert_eq!(h.stream_messages("order").await, 3, "Nats-Msg-Id de-duplicated the re-publish");
    token.cancel();
}

#[tokio::test]
async fn events_committed_while_nats_is_down_are_published_when_it_returns() {
    let mut nats = testkit::NatsServer::start().await.expect("own nats-server");
    let h = Harness::with_nats_url(&nats.url()).await;
    let token = start_relay(&h);
    nats.stop();

    let tenant = Uuid::new_v4();
    h.commit_events((1..=4).map(|n| tick(tenant, "agg", n)).collect()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(unpublished(&h).await, 4, "nothing can be published during the outage");

    nats.resume().await.expect("restart nats");
    testkit::eventually("backlog drained after the outage", Duration::from_secs(30), || async {
        unpublished(&h).await == 0
    })
    .await;
    assert_eq!(h.stream_messages("order").await, 4);
    token.cancel();
}

#[tokio::test]
async fn only_one_relay_publishes_at_a_time() {
    let h = Harness::new().await;
    let tokens: Vec<_> = (0..3).map(|_| start_relay(&h)).collect();
    let tenant = Uuid::new_v4();
    for n in 1..=20 {
        h.commit_events(vec![tick(tenant, "agg", n)]).await;
    }
    testkit::eventually("20 published", WAIT, || async { unpublished(&h).await == 0 }).await;
    assert_eq!(h.stream_messages("order").await, 20);
    for token in tokens {
        token.cancel();
    }
}

#[tokio::test]
async fn pruning_removes_only_what_is_past_retention() {
    let h = Harness::new().await;
    let tenant = Uuid::new_v4();
    h.commit_events((1..=3).map(|n| tick(tenant, "agg", n)).collect()).await;
    sqlx::query("UPDATE outbox SET published_at = now() - interval '2 days' WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT 2)")
        .execute(&h.pool)
        .await
        .expect("age rows");
    sqlx::query("INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', $1, now() - interval '30 days'), ('c', $2, now())")
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .execute(&h.pool)
        .await
        .expect("inbox rows");
    let mut config = h.bus.config().clone();
    config.outbox_retention = Duration::from_secs(24 * 3600);
    config.inbox_retention = Duration::from_secs(8 * 24 * 3600);
    let mut conn = h.pool.acquire().await.expect("conn");
    let (outbox, inbox) = bus::outbox::prune(&mut conn, &config).await.expect("prune");
    assert_eq!((outbox, inbox), (2, 1));
    assert_eq!(unpublished(&h).await, 1, "the unpublished row is never pruned");
}

#[tokio::test]
async fn the_outbox_is_vacuumed_after_a_fixed_number_of_changed_rows() {
    // Every marked row leaves a dead entry the relay's poll walks until a vacuum; a threshold
    // proportional to the table (the default) would let a day of retained rows pile them up.
    let h = Harness::new().await;
    let options: Vec<String> =
        sqlx::query_scalar("SELECT unnest(reloptions) FROM pg_class WHERE oid = 'outbox'::regclass ORDER BY 1")
            .fetch_all(&h.pool)
            .await
            .expect("reloptions");
    assert_eq!(
        options,
        ["autovacuum_vacuum_cost_delay=0", "autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=10000"]
    );
}

#[tokio::test]
async fn after_a_partial_batch_the_relay_lingers_before_it_polls_again() {
    let h = Harness::new().await;
    let mut config = bus::BusConfig::for_tests(&testkit::nats_url(), h.ns().clone());
    config.relay_linger = Duration::from_secs(3);
    let bus = bus::Bus::connect(config, "bus-tests-linger").await.expect("connect");
    let token = CancellationToken::new();
    tokio::spawn(bus::outbox::Relay::new(h.pool.clone(), bus, Default::default()).run(token.clone()));
    let tenant = Uuid::new_v4();

    h.commit_events(vec![tick(tenant, "agg", 1)]).await;
    testkit::eventually("the first event published", WAIT, || async { unpublished(&h).await == 0 }).await;
    // One row was a partial batch: the relay now waits before its next poll.
    h.commit_events(vec![tick(tenant, "agg", 2)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(unpublished(&h).await, 1, "the second waits out the linger");
    testkit::eventually("then it is published", WAIT, || async { unpublished(&h).await == 0 }).await;
    assert_eq!(h.stream_messages("order").await, 2);
    token.cancel();
}

#[tokio::test]
async fn the_outbox_and_inbox_keep_autoanalyze_small_on_every_column() {
    // Migration 0004; payloads and headers have none at all.
    let h = Harness::new().await;
    testkit::assert_small_statistics(&h.pool, &["outbox", "inbox"]).await;
}
