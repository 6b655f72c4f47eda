//! Order events over the real JetStream: TikTok Shop orders reserve on `order.created`, shortages
//! are published, shipping commits, a return restocks, cancelling releases; all idempotent
//! under redelivery.

use events::inventory::{ReservationShortage, ShortItem};
use testkit::Role;
use tonic::Code;

use crate::helpers::{
    Tenant, TestApp, assert_status, order_cancelled, order_created, order_status_changed, pb, spawn_app,
};

async fn levels(app: &TestApp, tenant: &Tenant, sku: &str) -> (i64, i64) {
    let level = app.caller(tenant, Role::Viewer).level(sku).await;
    (level.on_hand, level.reserved)
}

async fn reserve_ledger_rows(app: &TestApp, reference: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inventory.stock_ledger WHERE reference = $1")
        .bind(reference)
        .fetch_one(&app.admin)
        .await
        .expect("ledger rows")
}

#[tokio::test]
async fn a_tiktok_order_reserves_once_even_when_its_event_is_redelivered() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 5)]).await;
    let viewer = app.caller(&tenant, Role::Viewer);

    let created = order_created("o1", "order:o1", false, &[(Some("A"), 2), (None, 3)]);
    let envelope = app.publish_order_event(&tenant, "o1", created).await;
    app.wait_order_events_handled().await;
    let reservation = viewer.get_reservation("order:o1").await.expect("held for the order");
    assert_eq!(reservation.status(), pb::ReservationStatus::Held);
    let items: Vec<(&str, i64)> = reservation.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect();
    assert_eq!(items, [("A", 2)], "the unmapped item is skipped");
    assert_eq!(levels(&app, &tenant, "A").await, (5, 2));

    app.redeliver(&envelope).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 2));
    assert_eq!(app.held_reservations(&tenant).await, 1);
    assert_eq!(reserve_ledger_rows(&app, "order:o1").await, 1);
    let duplicates = app.metric("bus_consumer_messages", &[("outcome", "duplicate")]).await;
    assert_eq!(duplicates, 1.0, "the redelivery was recognised as such");
    assert_eq!(app.dead_letters().await, 0);
    // The event and its redelivery came one at a time: two lane batches of one message each.
    assert_eq!(app.metric("bus_consumer_batch_size_count", &[]).await, 2.0);
    assert_eq!(app.metric("bus_consumer_batch_size_sum", &[]).await, 2.0);
}

#[tokio::test]
async fn an_order_whose_stock_a_draft_already_holds_reserves_nothing_more() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 5)]).await;

    let created = order_created("o2", "draft:d2:v1", true, &[(Some("A"), 2)]);
    app.publish_order_event(&tenant, "o2", created).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0));
    assert_status(app.caller(&tenant, Role::Viewer).get_reservation("draft:d2:v1").await, Code::NotFound, &[]);
    // Nothing to do, so no transaction: acked without an inbox row, counted as ignored. So is a
    // status change that moves no stock.
    let paid = order_status_changed("o2", "draft:d2:v1", "pending_payment", "confirmed");
    app.publish_order_event(&tenant, "o2", paid).await;
    app.wait_order_events_handled().await;
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.inbox").await, 0);
    assert_eq!(app.metric("bus_consumer_messages", &[("outcome", "ignored")]).await, 2.0);
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test]
async fn a_tiktok_order_without_enough_stock_publishes_the_shortage_and_reserves_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 5), ("B", 1)]).await;

    let created = order_created("o3", "order:o3", false, &[(Some("A"), 1), (Some("B"), 4), (Some("GONE"), 1)]);
    let envelope = app.publish_order_event(&tenant, "o3", created).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0), "all or nothing");
    assert_eq!(levels(&app, &tenant, "B").await, (1, 0));
    assert_status(app.caller(&tenant, Role::Viewer).get_reservation("order:o3").await, Code::NotFound, &[]);

    testkit::eventually("the shortage is published", crate::helpers::PATIENCE, || async {
        !app.inventory_events::<ReservationShortage>().await.is_empty()
    })
    .await;
    app.redeliver(&envelope).await;
    app.wait_order_events_handled().await;
    app.wait_outbox_drained().await;
    let shortages = app.inventory_events::<ReservationShortage>().await;
    assert_eq!(shortages.len(), 1, "a redelivered order is not reported twice: {shortages:?}");
    let (shortage_envelope, shortage) = &shortages[0];
    assert_eq!(shortage.order_id, "o3");
    assert_eq!(shortage.reference, "order:o3");
    assert_eq!(
        shortage.short,
        [
            ShortItem { sku: "B".into(), requested: 4, available: 1 },
            ShortItem { sku: "GONE".into(), requested: 1, available: 0 },
        ]
    );
    assert_eq!(shortage_envelope.tenant_id, tenant.id);
    assert_eq!(shortage_envelope.causation_id, Some(envelope.id));
    assert_eq!(
        app.admin_scalar(
            "SELECT count(*) FROM inventory.stock_levels WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand"
        )
        .await,
        0
    );

    // The order is cancelled later: nothing was reserved, so nothing moves and nothing fails.
    app.publish_order_event(&tenant, "o3", order_cancelled("o3", "order:o3")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "B").await, (1, 0));
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test]
async fn shipping_commits_returning_restocks_and_cancelling_releases_each_once() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 5)]).await;
    let viewer = app.caller(&tenant, Role::Viewer);

    app.publish_order_event(&tenant, "o4", order_created("o4", "order:o4", false, &[(Some("A"), 2)])).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 2));

    let shipped =
        app.publish_order_event(&tenant, "o4", order_status_changed("o4", "order:o4", "packed", "shipped")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (3, 0), "shipped: on hand down, reservation closed");
    app.redeliver(&shipped).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (3, 0));
    assert_eq!(viewer.get_reservation("order:o4").await.expect("o4").status(), pb::ReservationStatus::Committed);

    let returned =
        app.publish_order_event(&tenant, "o4", order_status_changed("o4", "order:o4", "shipped", "returned")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0), "returned: back on the shelf");
    app.redeliver(&returned).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0));
    assert_eq!(viewer.get_reservation("order:o4").await.expect("o4").status(), pb::ReservationStatus::Restocked);

    app.publish_order_event(&tenant, "o5", order_created("o5", "order:o5", false, &[(Some("A"), 4)])).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 4));
    let cancelled = app.publish_order_event(&tenant, "o5", order_cancelled("o5", "order:o5")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0), "cancelled: released");
    app.redeliver(&cancelled).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0));
    assert_eq!(viewer.get_reservation("order:o5").await.expect("o5").status(), pb::ReservationStatus::Released);

    // Status changes that do not touch stock are ignored.
    app.publish_order_event(&tenant, "o5", order_status_changed("o5", "order:o5", "confirmed", "packed")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0));

    let on_hand_moves: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.stock_ledger WHERE reference IN ('order:o4', 'order:o5') AND reason <> 'reserve'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("ledger");
    assert_eq!(on_hand_moves, 3, "one commit, one restock, one release");
    assert_eq!(app.dead_letters().await, 0);
}

#[tokio::test]
async fn an_order_of_only_unmapped_items_reserves_nothing_and_ends_cleanly() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 5)]).await;

    app.publish_order_event(&tenant, "o6", order_created("o6", "order:o6", false, &[(None, 2), (None, 1)])).await;
    app.publish_order_event(&tenant, "o6", order_status_changed("o6", "order:o6", "packed", "shipped")).await;
    app.publish_order_event(&tenant, "o6", order_cancelled("o6", "order:o6")).await;
    app.wait_order_events_handled().await;
    assert_eq!(levels(&app, &tenant, "A").await, (5, 0));
    assert_eq!(app.held_reservations(&tenant).await, 0);
    assert_status(app.caller(&tenant, Role::Viewer).get_reservation("order:o6").await, Code::NotFound, &[]);
    assert_eq!(app.dead_letters().await, 0);
}
