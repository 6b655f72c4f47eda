//! CreateOrder: idempotent on the draft id (also under concurrent duplicates), per-tenant order
//! codes, totals computed by the server, bad money refused, and only the service role creates.

use std::sync::Arc;

use events::order::OrderCreated;
use testkit::Role;
use tokio::task::JoinSet;

use crate::helpers::{Tenant, expect_code, item, money, order_request, spawn_app, usd};

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_order() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let first = app.create_order(&tenant, "draft-7", &[("SKU-1", 1000, 1)]).await;
    let again = app.create_order(&tenant, "draft-7", &[("SKU-1", 1000, 1)]).await;
    assert_eq!((&again.id, &again.code), (&first.id, &first.code));
    assert_eq!(again.source_id, "draft-7");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 1);
    assert_eq!(app.order_events::<OrderCreated>().await.len(), 1);
}

/// Sends `duplicates` CreateOrder calls with one key at once and checks they made one order.
async fn concurrent_duplicates_make_exactly_one_order(duplicates: usize) {
    let app = Arc::new(spawn_app().await);
    let tenant = Tenant::new();
    let mut creates = JoinSet::new();
    for _ in 0..duplicates {
        let app = app.clone();
        creates.spawn(async move { app.create_order(&tenant, "draft-dup", &[("SKU-1", 1000, 2)]).await });
    }
    let mut answers = Vec::new();
    while let Some(order) = creates.join_next().await {
        answers.push(order.expect("create ran"));
    }
    let first = &answers[0];
    for order in &answers {
        assert_eq!((&order.id, &order.code), (&first.id, &first.code), "every duplicate gets the one order");
    }
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 1);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.order_items").await, 1);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.status_history").await, 1);
    let created = app.order_events::<OrderCreated>().await;
    assert_eq!(created.len(), 1, "one order.created on the stream");
    assert_eq!(created[0].1.order_id, first.id);
}

#[tokio::test]
async fn twenty_concurrent_creates_with_one_key_make_exactly_one_order() {
    concurrent_duplicates_make_exactly_one_order(20).await;
}

#[tokio::test]
async fn concurrent_duplicates_within_the_pool_size_make_exactly_one_order() {
    concurrent_duplicates_make_exactly_one_order(crate::helpers::CONCURRENCY).await;
}

#[tokio::test]
async fn different_keys_get_increasing_codes_per_tenant() {
    let app = spawn_app().await;
    let (a, b) = (Tenant::new(), Tenant::new());
    let mut codes = Vec::new();
    for n in 1..=3 {
        codes.push(app.create_order(&a, &format!("draft-a{n}"), &[("SKU-1", 1000, 1)]).await.code);
    }
    assert_eq!(codes, ["ORD-000001", "ORD-000002", "ORD-000003"]);
    // The same draft id in another tenant is another order.
    let b_first = app.create_order(&b, "draft-a1", &[("SKU-1", 1000, 1)]).await;
    assert_eq!(b_first.code, "ORD-000001", "another tenant starts at ORD-000001 too");
    let a_fourth = app.create_order(&a, "draft-a4", &[("SKU-1", 1000, 1)]).await;
    assert_eq!(a_fourth.code, "ORD-000004");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 5);

    // The code is what customers quote, in any case.
    let by_code = app.manager(&a).get(" ord-000004 ").await.expect("get by code");
    assert_eq!(by_code.id, a_fourth.id);
}

#[tokio::test]
async fn totals_are_computed_by_the_server() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let mut request = order_request("draft-1", vec![item("SKU-1", 1299, 2), item("SKU-2", 500, 1)]);
    // What the caller claims a line costs is ignored: the server multiplies.
    request.items[0].line_total = Some(usd(1));
    request.discount = Some(usd(300));
    request.tax = Some(usd(250));
    request.shipping = Some(usd(499));
    let order = app.service(&tenant).create(request).await.expect("create");

    let line_totals: Vec<i64> =
        order.items.iter().map(|i| i.line_total.as_ref().expect("line total").amount_minor).collect();
    assert_eq!(line_totals, [2598, 500]);
    assert_eq!(order.subtotal, Some(usd(3098)));
    assert_eq!(order.discount, Some(usd(300)));
    assert_eq!(order.tax, Some(usd(250)));
    assert_eq!(order.shipping, Some(usd(499)));
    assert_eq!(order.total, Some(usd(3098 - 300 + 250 + 499)));
    assert_eq!(order.amount_paid, Some(usd(0)));
    let stored = app.manager(&tenant).get(&order.id).await.expect("get");
    assert_eq!(stored.total, Some(usd(3547)));
}

#[tokio::test]
async fn bad_orders_are_invalid_arguments_and_create_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let base = || order_request("draft-bad", vec![item("SKU-1", 1000, 2)]);
    type Spoil = fn(&mut crate::helpers::pb::CreateOrderRequest);
    let cases: [(&str, Spoil); 13] = [
        ("an item priced in another currency", |r| r.items[0].unit_price = Some(money(1000, "EUR"))),
        ("a discount in another currency", |r| r.discount = Some(money(100, "EUR"))),
        ("shipping in another currency", |r| r.shipping = Some(money(100, "NGN"))),
        ("a discount larger than the subtotal", |r| r.discount = Some(usd(2001))),
        ("a zero quantity", |r| r.items[0].quantity = 0),
        ("a negative quantity", |r| r.items[0].quantity = -1),
        ("a negative unit price", |r| r.items[0].unit_price = Some(usd(-1))),
        ("a negative tax", |r| r.tax = Some(usd(-5))),
        ("a missing sku", |r| r.items[0].sku = " ".into()),
        ("no items", |r| r.items.clear()),
        ("an unknown currency", |r| r.currency = "DOLLARS".into()),
        ("no idempotency key", |r| r.idempotency_key = String::new()),
        ("a phone that is not E.164", |r| r.customer.as_mut().expect("customer").phone_e164 = "0801 234".into()),
    ];
    let service = app.service(&tenant);
    for (what, spoil) in cases {
        let mut request = base();
        spoil(&mut request);
        expect_code(service.create(request).await, tonic::Code::InvalidArgument, what);
    }
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 0);
    let good = service.create(base()).await.expect("the unspoilt request is valid");
    assert_eq!(good.total, Some(usd(2000)));
}

#[tokio::test]
async fn only_the_service_role_creates_orders() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    for role in [Role::Viewer, Role::Agent, Role::Manager, Role::Admin, Role::Operator] {
        let caller = app.caller(&tenant, role);
        let request = order_request(&format!("draft-{role}"), vec![item("SKU-1", 1000, 1)]);
        expect_code(caller.create(request).await, tonic::Code::PermissionDenied, &format!("CreateOrder as {role}"));
    }
    let tenantless = app.with_token(testkit::token(None, Role::Service));
    expect_code(
        tenantless.create(order_request("draft-x", vec![item("SKU-1", 1000, 1)])).await,
        tonic::Code::PermissionDenied,
        "a service token without a tenant",
    );
    expect_code(
        app.anonymous().create(order_request("draft-y", vec![item("SKU-1", 1000, 1)])).await,
        tonic::Code::Unauthenticated,
        "no token",
    );
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 0);
}
