//! CreateOrders: several drafts' orders of the caller's tenant in one call, for the draft
//! service's approvals. Each entry is handled as CreateOrder would handle it and answered on its
//! own; only a service may call it, and only for its token's tenant.

use testkit::Role;
use tonic::Code;

use crate::helpers::{Tenant, expect_code, item, order_request, pb, spawn_app};

use pb::create_orders_result::Outcome;

fn order(outcome: &Outcome) -> &pb::Order {
    match outcome {
        Outcome::Order(order) => order,
        Outcome::Failure(f) => panic!("expected an order, got {:?}: {}", Code::from_i32(f.code), f.message),
    }
}

fn failure_code(outcome: &Outcome) -> Code {
    match outcome {
        Outcome::Failure(f) => Code::from_i32(f.code),
        Outcome::Order(o) => panic!("expected a failure, got order {}", o.code),
    }
}

#[tokio::test]
async fn each_entry_is_answered_on_its_own_in_order_with_one_order_per_key() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let service = app.service(&tenant);
    let earlier = app.create_order(&tenant, "draft-0", &[("SKU-1", 1000, 1)]).await;

    let mut no_currency = order_request("draft-2", vec![item("SKU-1", 500, 1)]);
    no_currency.currency = String::new();
    let outcomes = service
        .create_many(vec![
            ("alice", order_request("draft-1", vec![item("SKU-1", 1250, 2), item("SKU-2", 300, 1)])),
            ("alice", no_currency),
            ("bob", order_request("draft-0", vec![item("SKU-1", 1000, 1)])),
            ("bob", order_request("draft-3", vec![item("SKU-3", 700, 1)])),
            ("carol", order_request("draft-3", vec![item("SKU-3", 700, 1)])),
        ])
        .await
        .expect("the call itself succeeds");

    assert_eq!(outcomes.len(), 5, "one result per entry");
    let first = order(&outcomes[0]);
    assert_eq!(first.total.as_ref().map(|m| m.amount_minor), Some(2800), "totals recomputed by the server");
    assert_eq!(failure_code(&outcomes[1]), Code::InvalidArgument);
    assert_eq!(order(&outcomes[2]).id, earlier.id, "a key seen before answers with its order");
    assert_eq!(order(&outcomes[3]).id, order(&outcomes[4]).id, "the same key twice in one call: one order");
    assert_eq!(
        app.admin_scalar(
            "SELECT count(*) FROM orders.orders WHERE source_id IN ('draft-0', 'draft-1', 'draft-2', 'draft-3')"
        )
        .await,
        3
    );

    // The entry's user is in the order's history, with the service that acted for them.
    let history = app.manager(&tenant).get(&first.id).await.expect("get").history;
    assert_eq!(
        history.iter().map(|h| (h.actor_user.as_str(), h.actor_service.as_str())).collect::<Vec<_>>(),
        [("alice", "test-user")]
    );
}

#[tokio::test]
async fn only_a_service_may_call_it_and_a_call_needs_one_to_256_entries() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    for role in [Role::Agent, Role::Admin] {
        let entries = vec![("", order_request("draft-1", vec![item("A", 1, 1)]))];
        let denied = app.caller(&tenant, role).create_many(entries).await;
        expect_code(denied, Code::PermissionDenied, "a person may not call CreateOrders");
    }
    let entries = vec![("", order_request("draft-1", vec![item("A", 1, 1)]))];
    let anonymous = app.anonymous().create_many(entries).await;
    expect_code(anonymous, Code::Unauthenticated, "no token");

    let service = app.service(&tenant);
    expect_code(service.create_many(Vec::new()).await, Code::InvalidArgument, "no entries");
    let too_many = (0..257).map(|i| ("", order_request(&format!("draft-{i}"), vec![item("A", 1, 1)]))).collect();
    expect_code(service.create_many(too_many).await, Code::InvalidArgument, "257 entries");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM orders.orders").await, 0, "nothing refused was written");
}

#[tokio::test]
async fn the_same_key_under_another_tenant_is_another_order() {
    let app = spawn_app().await;
    let (ours, theirs) = (Tenant::new(), Tenant::new());
    let our_order = app.create_order(&ours, "draft-1", &[("SKU-1", 1000, 1)]).await;

    let outcomes = app
        .service(&theirs)
        .create_many(vec![("", order_request("draft-1", vec![item("SKU-9", 1, 1)]))])
        .await
        .expect("answered per entry");
    let theirs_order = order(&outcomes[0]);
    assert_ne!(theirs_order.id, our_order.id, "their key never reaches our order");
    let ours_now = app.manager(&ours).get(&our_order.id).await.expect("ours");
    assert_eq!(ours_now.items.len(), 1);
    assert_eq!(ours_now.items[0].sku, "SKU-1", "our order untouched");
}

/// The draft service gathered the call's entries already: they are created together as they
/// came, not queued again for the create committers (where, one batch holding one order here,
/// they would take a statement each, one after the other).
#[tokio::test]
async fn a_calls_orders_are_written_by_one_statement_whatever_the_queues_batch_size() {
    let app = crate::helpers::spawn_app_configured(|config| config.commits.create_max_batch = 1).await;
    let tenant = Tenant::new();
    let outcomes = app
        .service(&tenant)
        .create_many((1..=4).map(|i| ("", order_request(&format!("draft-{i}"), vec![item("A", 100, i)]))).collect())
        .await
        .expect("answered per entry");
    let codes: Vec<String> = outcomes.iter().map(|o| order(o).code.clone()).collect();
    assert_eq!(codes.len(), 4);
    assert_eq!(
        app.admin_scalar("SELECT count(DISTINCT xmin::text) FROM orders.orders").await,
        1,
        "the four orders were written by one statement"
    );
}
