//! Tenant isolation: another tenant's order is NOT_FOUND for every call, and lists and summaries
//! never include it.

use order::domain::lifecycle::Status;
use testkit::Role;

use crate::helpers::{Tenant, address, expect_code, pb, spawn_app, status_of, usd};

#[tokio::test]
async fn another_tenants_order_is_not_found_for_every_call() {
    let app = spawn_app().await;
    let (a, b) = (Tenant::new(), Tenant::new());
    let order = app.create_order(&a, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let admin_b = app.caller(&b, Role::Admin);
    let not_found = tonic::Code::NotFound;

    expect_code(admin_b.get(&order.id).await, not_found, "GetOrder by id");
    expect_code(admin_b.get(&order.code).await, not_found, "GetOrder by code");
    expect_code(admin_b.set_status(&order.id, Status::Confirmed, "", 0).await, not_found, "UpdateOrderStatus");
    expect_code(admin_b.cancel(&order.id, "mine now", 0).await, not_found, "CancelOrder");
    expect_code(admin_b.pay(&order.id, usd(1000)).await, not_found, "RecordPayment");
    expect_code(admin_b.refund(&order.id, usd(1)).await, not_found, "RecordPayment refund");
    let edit = pb::UpdateOrderRequest {
        order_id: order.id.clone(),
        notes: Some("hello".into()),
        shipping_address: Some(address("NG")),
        ..Default::default()
    };
    expect_code(admin_b.update(edit).await, not_found, "UpdateOrder");
    let bulk = admin_b.bulk(&[&order.id], Status::Confirmed, "").await.expect("bulk answers per order");
    assert!(!bulk[0].ok && bulk[0].error_message == "order not found", "{bulk:?}");

    let stored = app.manager(&a).get(&order.id).await.expect("the owner still sees it");
    assert_eq!(stored.version, order.version, "nothing changed");
    assert_eq!(status_of(&stored), Status::PendingPayment);
    assert!(stored.payments.is_empty() && stored.notes.is_empty());

    // B's own first order has the same code; B gets its own, never A's.
    let own = app.create_order(&b, "draft-1", &[("SKU-9", 5, 1)]).await;
    assert_eq!(own.code, order.code);
    assert_eq!(admin_b.get(&order.code).await.expect("own order by code").id, own.id);
}

#[tokio::test]
async fn lists_and_summaries_only_show_the_callers_orders() {
    let app = spawn_app().await;
    let (a, b) = (Tenant::new(), Tenant::new());
    for n in 1..=3 {
        app.create_order(&a, &format!("draft-{n}"), &[("SKU-1", 1000, n)]).await;
    }
    let b_order = app.create_order(&b, "draft-1", &[("SKU-1", 700, 1)]).await;
    let viewer_b = app.caller(&b, Role::Viewer);

    for sort in [pb::SortBy::CreatedDesc, pb::SortBy::TotalAsc] {
        let listed = viewer_b.list_all(pb::OrderFilter::default(), sort, 10).await;
        assert_eq!(listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [b_order.id.as_str()]);
    }
    // A's customer is also called Ada Obi; searching B's orders finds only B's.
    let search = pb::OrderFilter { search: "ada".into(), ..Default::default() };
    assert_eq!(viewer_b.list_all(search.clone(), pb::SortBy::CreatedDesc, 10).await.len(), 1);

    let summary = viewer_b.summary(pb::OrderFilter::default()).await.expect("summary");
    assert_eq!(summary.count, 1);
    assert_eq!(summary.totals, [usd(700)]);
    let summary_a = app.caller(&a, Role::Viewer).summary(search).await.expect("summary");
    assert_eq!((summary_a.count, summary_a.totals.clone()), (3, vec![usd(6000)]));
}
