//! CreateOrder and status changes share transactions (group commits). Inside a batch every call
//! keeps its own outcome: a refused move, a duplicate key or a row the database will not take
//! affects that call alone, and nothing of it is half-written. The batch processors are driven
//! directly here, so the calls surely share one batch; the gRPC tests elsewhere reach them through
//! the queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use events::order::{OrderCreated, OrderSource, OrderStatusChanged};
use money::{Currency, Money};
use order::commits::{CreateBatches, CreateJob, StatusBatches};
use order::domain::lifecycle::Status;
use order::domain::parties::Customer;
use order::domain::payments::PaymentStatus;
use order::domain::totals::{Line, Totals};
use order::outbound::codes::OrderCodes;
use order::outbound::orders::{Actor, ChangeError, ChangeSource, NewOrder};
use order::outbound::transitions::MoveRequest;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp, item, order_request, spawn_app, status_of};

fn manager() -> Actor {
    Actor {
        user: Some("manager-1".into()),
        service: None,
        source: ChangeSource::User,
        tracking_number: None,
        shipping_provider_id: None,
    }
}

fn status_batches(app: &TestApp) -> StatusBatches {
    StatusBatches { connections: app.batch_connections(), namespace: app.namespace.clone() }
}

fn move_request(tenant: &Tenant, order: &str, to: Status, reason: &str, expected_version: i64) -> MoveRequest {
    MoveRequest {
        tenant_id: tenant.id,
        order: order.into(),
        to,
        reason: Some(reason.into()),
        expected_version,
        actor: manager(),
        trace: None,
    }
}

async fn history_rows(app: &TestApp, order_id: &str) -> i64 {
    app.admin_scalar(&format!("SELECT count(*) FROM orders.status_history WHERE order_id = '{order_id}'")).await
}

#[tokio::test]
async fn a_batch_of_moves_refuses_each_bad_one_alone_and_applies_the_rest_in_order() {
    let app = spawn_app().await;
    let (tenant, other) = (Tenant::new(), Tenant::new());
    let a = app.create_order(&tenant, "draft-a", &[("SKU-1", 1000, 1)]).await;
    let b = app.create_order(&tenant, "draft-b", &[("SKU-1", 1000, 1)]).await;
    let c = app.create_order(&tenant, "draft-c", &[("SKU-1", 1000, 1)]).await;
    let d = app.create_order(&tenant, "draft-d", &[("SKU-1", 1000, 1)]).await;
    let foreign = app.create_order(&other, "draft-f", &[("SKU-1", 1000, 1)]).await;

    let batch = vec![
        move_request(&tenant, &a.id, Status::Confirmed, "paid in cash", 0),
        move_request(&tenant, &b.id, Status::Shipped, "too early", 0),
        move_request(&tenant, &c.id, Status::Confirmed, "stale", c.version + 5),
        move_request(&tenant, &Uuid::new_v4().to_string(), Status::Confirmed, "nobody's", 0),
        move_request(&tenant, &foreign.id, Status::Confirmed, "another tenant's", 0),
        // The same order again: it sees the move before it in the batch.
        move_request(&tenant, &a.id, Status::Processing, "packing", a.version + 1),
        // By code, in any case.
        move_request(&tenant, &d.code.to_lowercase(), Status::Cancelled, "customer asked", d.version),
    ];
    let outcomes = db::BatchProcessor::process(&status_batches(&app), batch).await;

    let summary: Vec<Result<(Status, i64), String>> = outcomes
        .iter()
        .map(|o| match o {
            Ok(order) => Ok((order.status, order.version)),
            Err(err) => Err(match err {
                ChangeError::NotFound => "not found".to_string(),
                ChangeError::StaleVersion { .. } => "stale".to_string(),
                ChangeError::Illegal(illegal) => illegal.to_string(),
                other => panic!("unexpected {other:?}"),
            }),
        })
        .collect();
    assert_eq!(
        summary,
        [
            Ok((Status::Confirmed, a.version + 1)),
            Err("order is pending_payment; it can move to confirmed, cancelled".into()),
            Err("stale".into()),
            Err("not found".into()),
            Err("not found".into()),
            Ok((Status::Processing, a.version + 2)),
            Ok((Status::Cancelled, d.version + 1)),
        ]
    );

    let manager = app.manager(&tenant);
    let stored_a = manager.get(&a.id).await.expect("get a");
    assert_eq!((status_of(&stored_a), stored_a.version), (Status::Processing, a.version + 2));
    let reasons: Vec<&str> = stored_a.history.iter().map(|h| h.reason.as_str()).collect();
    assert_eq!(reasons, ["created", "paid in cash", "packing"], "history in the batch's order");
    for (refused, version) in [(&b, b.version), (&c, c.version)] {
        let stored = manager.get(&refused.id).await.expect("get");
        assert_eq!((status_of(&stored), stored.version), (Status::PendingPayment, version), "refused: untouched");
        assert_eq!(history_rows(&app, &refused.id).await, 1, "refused: no history row");
    }
    let stored_foreign = app.manager(&other).get(&foreign.id).await.expect("get");
    assert_eq!(status_of(&stored_foreign), Status::PendingPayment, "another tenant's order untouched");
    assert_eq!(status_of(&manager.get(&d.id).await.expect("get d")), Status::Cancelled);

    let moves: Vec<(String, String)> =
        app.order_events::<OrderStatusChanged>().await.into_iter().map(|(_, e)| (e.order_id, e.to)).collect();
    assert_eq!(
        moves,
        [(a.id.clone(), "confirmed".into()), (a.id.clone(), "processing".into()), (d.id.clone(), "cancelled".into())],
        "one event per move applied, none for the refused ones"
    );
}

#[tokio::test]
async fn a_move_the_database_refuses_fails_alone_and_leaves_nothing_half_written() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let good = app.create_order(&tenant, "draft-good", &[("SKU-1", 1000, 1)]).await;
    let bad = app.create_order(&tenant, "draft-bad", &[("SKU-1", 1000, 1)]).await;
    let also_good = app.create_order(&tenant, "draft-also-good", &[("SKU-1", 1000, 1)]).await;

    // Postgres refuses a NUL character in text: the batch's statement fails as a whole.
    let batch = vec![
        move_request(&tenant, &good.id, Status::Confirmed, "paid", 0),
        move_request(&tenant, &bad.id, Status::Confirmed, "paid\0", 0),
        move_request(&tenant, &also_good.id, Status::Confirmed, "paid", 0),
    ];
    let outcomes = db::BatchProcessor::process(&status_batches(&app), batch).await;

    assert!(matches!(&outcomes[0], Ok(order) if order.status == Status::Confirmed), "{:?}", outcomes[0]);
    assert!(matches!(&outcomes[1], Err(ChangeError::Database(_))), "{:?}", outcomes[1]);
    assert!(matches!(&outcomes[2], Ok(order) if order.status == Status::Confirmed), "{:?}", outcomes[2]);
    let manager = app.manager(&tenant);
    let stored_bad = manager.get(&bad.id).await.expect("get");
    assert_eq!((status_of(&stored_bad), stored_bad.version), (Status::PendingPayment, bad.version));
    assert_eq!(history_rows(&app, &bad.id).await, 1);
    let bad_audit =
        app.admin_scalar(&format!("SELECT count(*) FROM orders.audit_log WHERE order_id = '{}'", bad.id)).await;
    assert_eq!(bad_audit, 1, "only the creation's audit row");
    let moved: Vec<String> =
        app.order_events::<OrderStatusChanged>().await.into_iter().map(|(_, e)| e.order_id).collect();
    assert_eq!(moved, [good.id, also_good.id], "events for the good moves only, each once");
}

fn new_order(tenant: &Tenant, key: &str, item_name: &str) -> NewOrder {
    let usd: Currency = "USD".parse().expect("USD");
    let price = Money::new(1250, usd);
    NewOrder {
        tenant_id: tenant.id,
        source: OrderSource::Draft,
        source_id: key.into(),
        reservation_reference: format!("draft:{key}:v1"),
        reservation_held: true,
        lines: vec![Line {
            sku: Some("SKU-1".into()),
            name: item_name.into(),
            unit_price: price,
            quantity: 2,
            line_total: Money::new(2500, usd),
        }],
        totals: Totals {
            subtotal: Money::new(2500, usd),
            discount: Money::new(0, usd),
            tax: Money::new(0, usd),
            shipping: Money::new(0, usd),
            total: Money::new(2500, usd),
        },
        customer: Customer { name: "Ada Obi".into(), ..Default::default() },
        shipping_address: None,
        notes: String::new(),
        attention: Vec::new(),
        status: Status::PendingPayment,
        payment_status: PaymentStatus::Pending,
        platform_update_time: None,
    }
}

fn create_job(tenant: &Tenant, key: &str, item_name: &str) -> CreateJob {
    let actor = Actor { user: None, service: Some("draft".into()), ..manager() };
    CreateJob { new: new_order(tenant, key, item_name), actor, trace: BTreeMap::new() }
}

#[tokio::test]
async fn creates_in_one_batch_each_get_their_own_order_and_a_bad_one_fails_alone() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let earlier = app.create_order(&tenant, "draft-earlier", &[("SKU-1", 1000, 1)]).await;
    let processor = CreateBatches {
        pool: app.service_pool(),
        connections: app.batch_connections(),
        namespace: app.namespace.clone(),
        codes: Arc::new(OrderCodes::default()),
    };
    let batch = vec![
        create_job(&tenant, "draft-1", "Shea butter"),
        create_job(&tenant, "draft-1", "Shea butter"),
        create_job(&tenant, "draft-bad", "Shea\0butter"),
        create_job(&tenant, "draft-earlier", "Shea butter"),
        create_job(&tenant, "draft-2", "Black soap"),
    ];
    let outcomes = db::BatchProcessor::process(&processor, batch).await;

    let created: Vec<_> = outcomes.iter().map(|o| o.as_ref().map(|c| (c.order.id, c.new))).collect();
    let (first, second) = (created[0].as_ref().expect("draft-1"), created[4].as_ref().expect("draft-2"));
    assert!(first.1 && second.1, "two new orders");
    assert_eq!(created[1].as_ref().expect("the duplicate"), &(first.0, false), "the duplicate gets the same order");
    assert!(created[2].is_err(), "the bad one fails: {:?}", outcomes[2]);
    let again = created[3].as_ref().expect("the retry");
    assert_eq!((again.0.to_string(), again.1), (earlier.id.clone(), false), "a retry gets the stored order");

    let codes: Vec<&str> = [0, 4].iter().map(|&i| outcomes[i].as_ref().expect("ok").order.code.as_str()).collect();
    assert!(
        codes.iter().all(|c| *c > earlier.code.as_str()),
        "codes keep increasing: {codes:?} after {}",
        earlier.code
    );
    assert_ne!(codes[0], codes[1]);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 3);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.order_items").await, 3);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.status_history").await, 3);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.audit_log").await, 3);
    let bad = app.admin_scalar("SELECT count(*) FROM orders.orders WHERE source_id = 'draft-bad'").await;
    assert_eq!(bad, 0, "nothing of the bad one");

    let events: Vec<(String, String)> =
        app.order_events::<OrderCreated>().await.into_iter().map(|(_, e)| (e.source_id, e.order_code)).collect();
    assert_eq!(events.len(), 3, "one order.created per order: {events:?}");
    let stored = app.manager(&tenant).get(&first.0.to_string()).await.expect("get the new order");
    assert_eq!(stored.items[0].name, "Shea butter");
    assert_eq!(stored.history.len(), 1);
}

#[tokio::test]
async fn concurrent_creates_with_a_bad_one_among_them_each_get_their_own_answer() {
    let app = Arc::new(spawn_app().await);
    let tenant = Tenant::new();
    let mut calls = JoinSet::new();
    for n in 0..24 {
        let app = app.clone();
        calls.spawn(async move {
            let name = if n == 7 { "Shea\0butter" } else { "Shea butter" };
            let mut line = item("SKU-1", 1000, 1);
            line.name = name.into();
            (n, app.service(&tenant).create(order_request(&format!("draft-{}", n % 20), vec![line])).await)
        });
    }
    let mut answers = calls.join_all().await;
    answers.sort_by_key(|(n, _)| *n);
    for (n, answer) in &answers {
        match (n, answer) {
            (7, answer) => assert!(answer.is_err(), "the bad call fails: {answer:?}"),
            (n, Ok(order)) => assert_eq!(order.source_id, format!("draft-{}", n % 20)),
            (n, Err(status)) => panic!("call {n} failed: {status:?}"),
        }
    }
    // Keys 0-3 were asked for twice (n and n + 20): one order each, the same for both callers.
    for n in 0..4 {
        let (a, b) = (answers[n].1.as_ref().expect("ok"), answers[n + 20].1.as_ref().expect("ok"));
        assert_eq!((&a.id, &a.code), (&b.id, &b.code));
    }
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 19, "20 keys, the bad one not stored");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.status_history").await, 19);
    assert_eq!(app.admin_scalar("SELECT count(DISTINCT code) FROM orders.orders").await, 19);
}
