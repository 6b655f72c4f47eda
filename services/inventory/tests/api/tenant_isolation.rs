//! One tenant never sees or moves another's catalog, stock or reservations, even with the same
//! SKUs and references.

use testkit::Role;
use tonic::Code;

use crate::helpers::{Tenant, assert_status, item, order_cancelled, pb, received, spawn_app};

#[tokio::test]
async fn a_tenant_cannot_see_or_move_another_tenants_catalog_stock_or_reservations() {
    let app = spawn_app().await;
    let (a, b) = (Tenant::new(), Tenant::new());
    app.seed(&a, &[("SHARED-1", 5)]).await;
    let a_manager = app.manager(&a);
    a_manager.reserve("order:1", &[("SHARED-1", 2)]).await.expect("A reserves");
    let b_manager = app.manager(&b);

    assert_status(b_manager.get_item("SHARED-1").await, Code::NotFound, &[]);
    assert!(b_manager.list(100, "").await.expect("list").items.is_empty());
    assert!(b_manager.search("item shared", 10).await.expect("search").is_empty());
    assert!(b_manager.search("SHARED-1", 10).await.expect("search").is_empty());
    assert!(b_manager.stock(&["SHARED-1"]).await.expect("stock").is_empty());
    assert_status(b_manager.reserve("b:1", &[("SHARED-1", 1)]).await, Code::FailedPrecondition, &["available 0"]);
    assert_status(b_manager.adjust(received("SHARED-1", 5)).await, Code::NotFound, &[]);
    assert_status(b_manager.set_threshold("SHARED-1", 5).await, Code::NotFound, &[]);
    assert_status(b_manager.get_reservation("order:1").await, Code::NotFound, &[]);
    assert_status(b_manager.release("order:1").await, Code::NotFound, &[]);
    assert_status(b_manager.commit("order:1").await, Code::NotFound, &[]);
    assert_status(b_manager.restock("order:1").await, Code::NotFound, &[]);
    // B's order events name only B's reservations.
    app.publish_order_event(&b, "1", order_cancelled("1", "order:1")).await;
    app.wait_order_events_handled().await;

    let level = a_manager.level("SHARED-1").await;
    assert_eq!((level.on_hand, level.reserved), (5, 2), "A's stock untouched");
    assert_eq!(a_manager.get_reservation("order:1").await.expect("A's").status(), pb::ReservationStatus::Held);

    // B's own SKU and reference with the same names are B's alone.
    b_manager.upsert(vec![item("SHARED-1", "B's own bracelet", 4200)], false).await.expect("B's catalog");
    b_manager.adjust(received("SHARED-1", 1)).await.expect("B's stock");
    b_manager.reserve("order:1", &[("SHARED-1", 1)]).await.expect("B reserves its own");
    b_manager.commit("order:1").await.expect("B commits its own");
    assert_eq!(a_manager.get_item("SHARED-1").await.expect("A's item").name, "Item SHARED-1");
    let level = a_manager.level("SHARED-1").await;
    assert_eq!((level.on_hand, level.reserved), (5, 2), "A's stock untouched");
    assert_eq!(a_manager.get_reservation("order:1").await.expect("A's").status(), pb::ReservationStatus::Held);
    let b_found = b_manager.search("bracelet", 10).await.expect("search");
    assert_eq!(
        b_found.iter().filter_map(|m| m.item.as_ref()).map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["B's own bracelet"]
    );
    assert!(a_manager.search("bracelet", 10).await.expect("search").is_empty());
    let viewer = app.caller(&b, Role::Viewer);
    assert_eq!(viewer.list(100, "").await.expect("list").items.len(), 1);
}
