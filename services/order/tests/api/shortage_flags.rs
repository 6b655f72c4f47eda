//! Inventory's `reservation_shortage`, over real NATS: the order is flagged for attention once, a
//! redelivered event changes nothing, another tenant's event never touches the order, and a poison
//! event is dead-lettered without blocking the ones after it.

use events::inventory::{ReservationShortage, ShortItem};
use testkit::Role;
use uuid::Uuid;

use crate::helpers::{INVENTORY_CONSUMER, PATIENCE, Tenant, TestApp, spawn_app};

fn shortage(order_id: &str) -> ReservationShortage {
    ReservationShortage {
        reference: format!("order:{order_id}"),
        order_id: order_id.into(),
        short: vec![ShortItem { sku: "SKU-1".into(), requested: 3, available: 1 }],
    }
}

async fn publish_shortage(app: &TestApp, tenant: &Tenant, order_id: &str) -> bus::Envelope {
    app.publish_inventory_event(tenant, &format!("reservation:order:{order_id}"), shortage(order_id)).await
}

async fn wait_flagged(app: &TestApp, tenant: &Tenant, order_id: &str) {
    let viewer = app.caller(tenant, Role::Viewer);
    testkit::eventually("the order is flagged for a stock shortage", PATIENCE, || async {
        viewer.get(order_id).await.expect("get").attention.contains(&"stock_shortage".to_string())
    })
    .await;
}

async fn flagged_audit_rows(app: &TestApp, order_id: &str) -> Vec<(Option<String>, serde_json::Value)> {
    sqlx::query_as("SELECT actor_service, changes FROM orders.audit_log WHERE order_id = $1 AND action = 'flagged'")
        .bind(order_id.parse::<Uuid>().expect("uuid"))
        .fetch_all(&app.admin)
        .await
        .expect("audit rows")
}

#[tokio::test]
async fn a_reservation_shortage_flags_the_order_for_attention() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    assert!(order.attention.is_empty());
    publish_shortage(&app, &tenant, &order.id).await;
    wait_flagged(&app, &tenant, &order.id).await;

    let audit = flagged_audit_rows(&app, &order.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0.as_deref(), Some("inventory"));
    assert_eq!(audit[0].1["flag"], "stock_shortage");
    assert_eq!(audit[0].1["detail"][0]["sku"], "SKU-1", "what was short is kept: {}", audit[0].1);
}

#[tokio::test]
async fn the_same_shortage_delivered_again_does_not_duplicate_the_flag() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let envelope = publish_shortage(&app, &tenant, &order.id).await;
    wait_flagged(&app, &tenant, &order.id).await;
    let flagged = app.manager(&tenant).get(&order.id).await.expect("get");

    app.redeliver(&envelope).await;
    // A second, distinct shortage for the same order adds no second flag either.
    publish_shortage(&app, &tenant, &order.id).await;
    app.wait_inventory_events_handled().await;

    let after = app.manager(&tenant).get(&order.id).await.expect("get");
    assert_eq!(after.attention, ["stock_shortage"]);
    assert_eq!(after.version, flagged.version, "the redelivery changed nothing");
    assert_eq!(flagged_audit_rows(&app, &order.id).await.len(), 1);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.inbox WHERE consumer = $1 AND event_id = $2")
        .bind(INVENTORY_CONSUMER)
        .bind(envelope.id)
        .fetch_one(&app.admin)
        .await
        .expect("inbox");
    assert_eq!(processed, 1, "the envelope id was processed once");
    assert!(app.stream_messages("dlq").await.is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn a_shortage_under_another_tenant_does_not_touch_the_order() {
    let app = spawn_app().await;
    let (owner, other) = (Tenant::new(), Tenant::new());
    let order = app.create_order(&owner, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let witness = app.create_order(&other, "draft-1", &[("SKU-1", 1000, 3)]).await;
    publish_shortage(&app, &other, &order.id).await;
    publish_shortage(&app, &other, &witness.id).await;
    wait_flagged(&app, &other, &witness.id).await;
    app.wait_inventory_events_handled().await;

    let stored = app.manager(&owner).get(&order.id).await.expect("get");
    assert!(stored.attention.is_empty(), "{:?}", stored.attention);
    assert_eq!(stored.version, order.version);
}

#[tokio::test]
async fn a_poison_shortage_is_dead_lettered_and_the_next_one_still_flags() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let poison = publish_shortage(&app, &tenant, "not-a-uuid").await;
    publish_shortage(&app, &tenant, &order.id).await;
    wait_flagged(&app, &tenant, &order.id).await;

    testkit::eventually("the poison event is dead-lettered", PATIENCE, || async {
        app.stream_messages("dlq").await.iter().any(|(_, _, envelope)| envelope.id == poison.id)
    })
    .await;
}
