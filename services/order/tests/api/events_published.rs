//! What the order service announces on its stream: `order.created` with the reservation it holds,
//! one `order.status_changed` per transition with the order's items, and `order.cancelled`.

use events::order::{OrderCancelled, OrderCreated, OrderLine, OrderSource, OrderStatusChanged};
use order::domain::lifecycle::Status;

use crate::helpers::{Tenant, item, order_request, path_to, spawn_app, usd};

fn lines(items: &[(&str, i64)]) -> Vec<OrderLine> {
    items.iter().map(|(sku, quantity)| OrderLine { sku: Some(sku.to_string()), quantity: *quantity }).collect()
}

#[tokio::test]
async fn order_created_carries_the_reservation_it_holds() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let mut request = order_request("draft-41", vec![item("SKU-1", 1000, 2), item("SKU-2", 250, 3)]);
    request.reservation_reference = "draft-41:v3".into();
    request.shipping = Some(usd(500));
    let held = app.service(&tenant).create(request).await.expect("create");
    let without = app.create_order(&tenant, "draft-42", &[("SKU-1", 1000, 1)]).await;

    let created = app.order_events::<OrderCreated>().await;
    let messages = app.stream_messages("order").await;
    assert_eq!(messages.len(), 2);
    let (envelope, event) = &created[0];
    assert_eq!(
        event,
        &OrderCreated {
            order_id: held.id.clone(),
            order_code: held.code.clone(),
            source: OrderSource::Draft,
            source_id: "draft-41".into(),
            status: "pending_payment".into(),
            reservation_reference: "draft-41:v3".into(),
            reservation_held: true,
            items: lines(&[("SKU-1", 2), ("SKU-2", 3)]),
            currency: "USD".into(),
            total_minor: 2000 + 750 + 500,
        }
    );
    assert_eq!(envelope.tenant_id, tenant.id);
    assert_eq!(envelope.aggregate_id, format!("order:{}", held.id));
    let (subject, message_id, _) = &messages[0];
    assert_eq!(subject, &app.namespace.event_subject("order", 1, "created", tenant.id));
    assert_eq!(message_id, &envelope.id.to_string(), "Nats-Msg-Id is the envelope id");

    let (_, unreserved) = &created[1];
    assert_eq!(unreserved.order_id, without.id);
    assert_eq!(unreserved.reservation_reference, "");
    assert!(!unreserved.reservation_held, "no reference, nothing held");
}

#[tokio::test]
async fn every_transition_publishes_status_changed_with_the_items() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let mut request = order_request("draft-1", vec![item("SKU-1", 1000, 2), item("SKU-2", 100, 5)]);
    request.reservation_reference = "draft-1:v1".into();
    let order = app.service(&tenant).create(request).await.expect("create");
    let manager = app.manager(&tenant);
    let path = path_to(Status::Returned);
    for step in &path {
        manager.set_status(&order.id, *step, &format!("to {step}"), 0).await.expect("move");
    }

    let changes = app.order_events::<OrderStatusChanged>().await;
    let moves: Vec<(String, String)> = changes.iter().map(|(_, c)| (c.from.clone(), c.to.clone())).collect();
    let mut expected = Vec::new();
    let mut from = Status::PendingPayment;
    for step in &path {
        expected.push((from.to_string(), step.to_string()));
        from = *step;
    }
    assert_eq!(moves, expected, "one event per transition, shipped and returned included");
    for (envelope, change) in &changes {
        assert_eq!(change.order_id, order.id);
        assert_eq!(change.items, lines(&[("SKU-1", 2), ("SKU-2", 5)]));
        assert_eq!(change.reservation_reference, "draft-1:v1");
        assert_eq!(change.reason.as_deref(), Some(format!("to {}", change.to).as_str()));
        assert_eq!(envelope.aggregate_id, format!("order:{}", order.id));
    }
    let versions: Vec<i64> = changes.iter().map(|(_, c)| c.version).collect();
    assert!(versions.windows(2).all(|v| v[0] < v[1]), "versions increase: {versions:?}");
    assert!(app.order_events::<OrderCancelled>().await.is_empty());
}

#[tokio::test]
async fn cancelling_publishes_status_changed_and_order_cancelled() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let mut request = order_request("draft-1", vec![item("SKU-1", 1000, 4)]);
    request.reservation_reference = "draft-1:v2".into();
    let order = app.service(&tenant).create(request).await.expect("create");
    app.manager(&tenant).cancel(&order.id, "customer changed their mind", 0).await.expect("cancel");

    let changes = app.order_events::<OrderStatusChanged>().await;
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].1.from.as_str(), changes[0].1.to.as_str()), ("pending_payment", "cancelled"));
    let cancelled = app.order_events::<OrderCancelled>().await;
    assert_eq!(
        cancelled.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        [OrderCancelled {
            order_id: order.id.clone(),
            reason: "customer changed their mind".into(),
            reservation_reference: "draft-1:v2".into(),
            items: lines(&[("SKU-1", 4)]),
        }]
    );
    app.wait_outbox_drained().await;
    let types: Vec<String> = app.stream_messages("order").await.into_iter().map(|(_, _, e)| e.event_type).collect();
    assert_eq!(types, ["order.created", "order.status_changed", "order.cancelled"], "in commit order");
}

#[tokio::test]
async fn a_payment_that_confirms_the_order_publishes_the_transition() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    app.agent(&tenant).pay(&order.id, usd(1000)).await.expect("pay");
    let changes = app.order_events::<OrderStatusChanged>().await;
    assert_eq!(changes.len(), 1);
    let change = &changes[0].1;
    assert_eq!(
        (change.from.as_str(), change.to.as_str(), change.reason.as_deref()),
        ("pending_payment", "confirmed", Some("paid"))
    );
}
