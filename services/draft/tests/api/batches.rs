//! The message consumer handles a lane's waiting messages in one transaction. Whatever a batch
//! holds, the outcome is what handling its messages one by one would give: follow-ups merge into
//! the customer's draft in order, a duplicate or a resend changes nothing, and a message that
//! cannot be handled fails alone.

use std::sync::Arc;
use std::time::Duration;

use bus::{BatchHandler, Envelope, HandlerError, Namespace};
use draft::catalog_cache::CatalogCache;
use draft::domain::parser::DeterministicParser;
use draft::inbound::messages::MessageEvents;
use draft::outbound::calls::Caller;
use draft::outbound::inventory::InventoryClient;
use events::ingest::{CatalogItem, Customer, MessageContent, MessageReceived, Platform};
use proto::draft::v1 as pb;
use testkit::Role;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::{System, WAIT, authorized, spawn_system};

const CHANNEL: &str = "106540352242922";

fn message(tenant: Uuid, from: &str, message_id: &str, content: MessageContent) -> Envelope {
    let event = MessageReceived {
        platform: Platform::Whatsapp,
        channel_id: CHANNEL.into(),
        message_id: message_id.into(),
        customer: Customer {
            platform_id: from.into(),
            name: Some("Ada Obi".into()),
            phone_e164: Some(format!("+{from}")),
        },
        sent_at: OffsetDateTime::now_utc(),
        content,
        reply_to: None,
        referral: None,
    };
    Envelope::new(tenant, format!("wa:{CHANNEL}:{from}"), event, None).into_untyped().expect("envelope")
}

fn text(tenant: Uuid, from: &str, message_id: &str, body: &str) -> Envelope {
    message(tenant, from, message_id, MessageContent::Text { body: body.into() })
}

/// A cart of products the catalog does not have: nothing in it has a price.
fn unpriced_cart(tenant: Uuid, from: &str, message_id: &str) -> Envelope {
    let line = CatalogItem {
        product_retailer_id: "wa-not-ours".into(),
        quantity: 1,
        unit_price: None,
        price_text: "9.99".into(),
        currency: "USD".into(),
    };
    message(tenant, from, message_id, MessageContent::CatalogOrder { catalog_id: None, note: None, items: vec![line] })
}

/// A message_received event whose data is not one.
fn poison(tenant: Uuid) -> Envelope {
    let mut envelope = text(tenant, "2340000000000", "wamid.poison", "2 gold hoops size 7");
    envelope.data = serde_json::json!({ "platform": "whatsapp" });
    envelope
}

/// The consumer's handler, on the system's database and inventory.
fn handler(system: &System) -> (MessageEvents, sqlx::PgPool) {
    let common = system.env.common("draft");
    let pool = db::connect(&common.db).expect("pool");
    let caller = Caller::new(
        "inventory",
        auth::JwtKeys::new(common.jwt_secret.expose().as_bytes()),
        resilience::RetryPolicy::internal(),
        resilience::BreakerConfig::default(),
    );
    let channel = tonic::transport::Endpoint::from_shared(system.inventory_url.clone()).expect("url").connect_lazy();
    let handler = MessageEvents {
        namespace: common.bus.namespace.clone(),
        catalog: CatalogCache::new(InventoryClient::new(channel, caller)),
        parser: Arc::new(DeterministicParser),
        resend_window: Duration::from_secs(300),
    };
    (handler, pool)
}

/// Hands `events` to the handler as one batch and commits.
async fn one_batch(handler: &MessageEvents, pool: &sqlx::PgPool, events: &[Envelope]) -> Vec<Result<(), HandlerError>> {
    let refs: Vec<&Envelope> = events.iter().collect();
    let mut tx = pool.begin().await.expect("begin");
    let results = handler.handle_batch(&mut tx, &refs).await.expect("the batch's transaction stays usable");
    tx.commit().await.expect("commit");
    results
}

async fn drafts(system: &System) -> Vec<pb::Draft> {
    system
        .drafts()
        .await
        .list_drafts(authorized(pb::ListDraftsRequest::default(), &system.token(Role::Viewer)))
        .await
        .expect("list")
        .into_inner()
        .drafts
}

fn of_customer<'d>(drafts: &'d [pb::Draft], from: &str) -> Vec<&'d pb::Draft> {
    drafts.iter().filter(|d| d.customer.as_ref().is_some_and(|c| c.channel_customer_id == from)).collect()
}

fn lines(draft: &pb::Draft) -> Vec<(&str, i64)> {
    draft.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect()
}

/// (type, version or 0) of the draft events in the outbox about `draft_id`, in commit order.
async fn events_of(pool: &sqlx::PgPool, draft_id: &str) -> Vec<(String, i64)> {
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM outbox WHERE partition_key = $1 ORDER BY seq")
        .bind(format!("draft:{draft_id}"))
        .fetch_all(pool)
        .await
        .expect("outbox");
    payloads
        .iter()
        .map(|p| {
            let envelope: Envelope = serde_json::from_str(p).expect("envelope");
            (envelope.event_type, envelope.data["version"].as_i64().unwrap_or(0))
        })
        .collect()
}

#[tokio::test]
async fn one_batch_merges_follow_ups_in_order_changes_nothing_for_duplicates_and_fails_only_the_poison() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let (handler, pool) = handler(&system);
    let t = system.tenant;
    let (ada, bo, cy, di) = ("2348011111111", "2348022222222", "2348033333333", "2348044444444");
    let batch = vec![
        text(t, ada, "wamid.A1", "2 gold hoops size 7"),
        poison(t),
        text(t, ada, "wamid.A2", "1 silver chain pls"),
        text(t, bo, "wamid.B1", "1 beaded bracelet please"),
        // The same text re-sent, and the same message again under another event id.
        text(t, bo, "wamid.B2", "1 beaded bracelet please"),
        text(t, bo, "wamid.B1", "1 beaded bracelet please"),
        text(t, ada, "wamid.A3", "and 3 gold hoops size 8"),
        text(t, cy, "wamid.C1", "thanks so much!"),
        unpriced_cart(t, di, "wamid.D1"),
    ];
    let results = one_batch(&handler, &pool, &batch).await;
    let failed: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
    assert_eq!(failed, vec![1, 8], "only the poison and the unpriced cart fail: {results:?}");
    assert!(matches!(&results[1], Err(HandlerError::Permanent(reason)) if reason.contains("message_received")));
    assert!(matches!(&results[8], Err(HandlerError::Permanent(reason)) if reason.contains("no priced item")));

    let all = drafts(&system).await;
    assert_eq!(all.len(), 2, "one draft for Ada, one for Bo: {all:?}");
    let ada_drafts = of_customer(&all, ada);
    let [ada_draft] = ada_drafts.as_slice() else { panic!("one draft for Ada: {all:?}") };
    assert_eq!(lines(ada_draft), vec![("HOOP-G-7", 2), ("CHAIN-S", 1), ("HOOP-G-8", 3)], "merged in message order");
    assert_eq!(ada_draft.version, 3);
    assert_eq!(ada_draft.total.as_ref().map(|m| m.amount_minor), Some(2 * 1299 + 3000 + 3 * 1399));
    let bo_drafts = of_customer(&all, bo);
    let [bo_draft] = bo_drafts.as_slice() else { panic!("one draft for Bo: {all:?}") };
    assert_eq!(lines(bo_draft), vec![("BRACE-B", 1)], "the resend and the repeat changed nothing");
    assert_eq!(
        events_of(&pool, &ada_draft.id).await,
        vec![("draft.created".to_string(), 0), ("draft.updated".to_string(), 2), ("draft.updated".to_string(), 3)]
    );

    // A later batch extends the draft already in the database, once per message.
    let later = vec![text(t, ada, "wamid.A4", "1 beaded bracelet"), text(t, ada, "wamid.A5", "1 silver chain")];
    assert!(one_batch(&handler, &pool, &later).await.iter().all(Result::is_ok));
    let all = drafts(&system).await;
    let ada_drafts = of_customer(&all, ada);
    let [ada_draft] = ada_drafts.as_slice() else { panic!("still one draft for Ada: {all:?}") };
    assert_eq!(lines(ada_draft), vec![("HOOP-G-7", 2), ("CHAIN-S", 2), ("HOOP-G-8", 3), ("BRACE-B", 1)]);
    assert_eq!(ada_draft.version, 5);
    assert_eq!(events_of(&pool, &ada_draft.id).await.last(), Some(&("draft.updated".to_string(), 5)));
}

#[tokio::test]
async fn through_the_consumer_a_poison_message_is_dead_lettered_and_the_rest_become_drafts() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let namespace = Namespace::new(&system.env.namespace).expect("namespace");
    let bus = bus::Bus::connect(bus::BusConfig::for_tests(&testkit::nats_url(), namespace.clone()), "test")
        .await
        .expect("bus");
    let t = system.tenant;
    let (ada, bo) = ("2348011111111", "2348022222222");
    let first = text(t, ada, "wamid.A1", "2 gold hoops size 7");
    let events = vec![
        (first.clone(), first.id.to_string()),
        (poison(t), Uuid::new_v4().to_string()),
        (text(t, ada, "wamid.A2", "1 silver chain pls"), Uuid::new_v4().to_string()),
        // The same event again under another message id: the broker does not catch it.
        (first, Uuid::new_v4().to_string()),
        (text(t, bo, "wamid.B1", "1 beaded bracelet please"), Uuid::new_v4().to_string()),
        (text(t, ada, "wamid.A3", "and 3 gold hoops size 8"), Uuid::new_v4().to_string()),
    ];
    for (envelope, message_id) in &events {
        bus.publish(bus::Outgoing {
            subject: &namespace.event_subject("ingest", 1, "message_received", t),
            message_id,
            partition_key: &envelope.aggregate_id,
            payload: serde_json::to_vec(envelope).expect("json").into(),
            extra_headers: vec![],
        })
        .await
        .expect("publish");
    }

    testkit::eventually("Ada's three messages in one draft", WAIT, || async {
        let all = drafts(&system).await;
        of_customer(&all, ada).first().is_some_and(|d| d.items.len() == 3) && of_customer(&all, bo).len() == 1
    })
    .await;
    let all = drafts(&system).await;
    assert_eq!(all.len(), 2);
    assert_eq!(lines(of_customer(&all, ada)[0]), vec![("HOOP-G-7", 2), ("CHAIN-S", 1), ("HOOP-G-8", 3)]);

    let dlq = bus.jetstream().get_stream(namespace.dead_letter_stream()).await.expect("dlq");
    testkit::eventually("the poison dead-lettered", WAIT, || async { dlq.get_raw_message(1).await.is_ok() }).await;
    let dead = dlq.get_raw_message(1).await.expect("dead letter");
    let reason = dead.headers.get(bus::header_names::DLQ_REASON).expect("reason").to_string();
    assert!(reason.contains("message_received"), "{reason}");
    assert!(dlq.get_raw_message(2).await.is_err(), "only the poison is dead-lettered");
}
