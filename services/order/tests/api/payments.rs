//! RecordPayment: the seller confirming money received (and given back). Paying the total confirms
//! a pending order; payments are bounded by the balance due and refunds by what was paid; only
//! managers refund.

use order::domain::lifecycle::Status;

use crate::helpers::{Tenant, expect_code, money, payment_status_of, pb, spawn_app, status_of, usd};

#[tokio::test]
async fn part_of_the_total_leaves_the_order_pending_and_the_rest_confirms_it() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let agent = app.agent(&tenant);

    let part = agent.pay(&order.id, usd(1200)).await.expect("part payment");
    assert_eq!(status_of(&part), Status::PendingPayment);
    assert_eq!(payment_status_of(&part), pb::PaymentStatus::Pending);
    assert_eq!(part.amount_paid, Some(usd(1200)));

    let rest = agent.pay(&order.id, usd(1800)).await.expect("the rest");
    assert_eq!(status_of(&rest), Status::Confirmed);
    assert_eq!(payment_status_of(&rest), pb::PaymentStatus::Paid);
    assert_eq!(rest.amount_paid, Some(usd(3000)));

    let stored = agent.get(&order.id).await.expect("get");
    let last = stored.history.last().expect("history");
    assert_eq!((last.to, last.reason.as_str()), (pb::OrderStatus::Confirmed as i32, "paid"));
    let payments: Vec<(i32, i64, &str)> = stored
        .payments
        .iter()
        .map(|p| (p.kind, p.amount.as_ref().expect("amount").amount_minor, p.method.as_str()))
        .collect();
    let payment = pb::PaymentKind::Payment as i32;
    assert_eq!(payments, [(payment, 1200, "bank_transfer"), (payment, 1800, "bank_transfer")]);
    assert!(stored.payments.iter().all(|p| p.recorded_by == "test-user" && p.reference.starts_with("ref-")));
}

#[tokio::test]
async fn a_payment_beyond_the_balance_due_is_refused_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let agent = app.agent(&tenant);
    agent.pay(&order.id, usd(1200)).await.expect("part payment");

    let over = expect_code(agent.pay(&order.id, usd(1801)).await, tonic::Code::FailedPrecondition, "more than is due");
    assert!(over.message().contains("1800"), "says what is still due: {}", over.message());
    agent.pay(&order.id, usd(1800)).await.expect("exactly the rest");
    let again =
        expect_code(agent.pay(&order.id, usd(1800)).await, tonic::Code::FailedPrecondition, "the same payment twice");
    assert!(again.message().contains("paid in full"), "{}", again.message());

    let stored = agent.get(&order.id).await.expect("get");
    let amounts: Vec<i64> = stored.payments.iter().map(|p| p.amount.as_ref().expect("amount").amount_minor).collect();
    assert_eq!(amounts, [1200, 1800], "the refused payments left no row");
    assert_eq!(stored.amount_paid, Some(usd(3000)));
    assert_eq!(payment_status_of(&stored), pb::PaymentStatus::Paid);
}

#[tokio::test]
async fn refunds_lower_what_was_paid_and_never_exceed_it() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 3)]).await;
    let manager = app.manager(&tenant);
    expect_code(manager.refund(&order.id, usd(1)).await, tonic::Code::FailedPrecondition, "refund of nothing paid");
    manager.pay(&order.id, usd(3000)).await.expect("pay");

    let partial = manager.refund(&order.id, usd(1000)).await.expect("partial refund");
    assert_eq!(payment_status_of(&partial), pb::PaymentStatus::PartiallyRefunded);
    assert_eq!(partial.amount_paid, Some(usd(2000)));
    assert_eq!(status_of(&partial), Status::Confirmed, "a refund does not move the order");

    let beyond = expect_code(
        manager.refund(&order.id, usd(2001)).await,
        tonic::Code::FailedPrecondition,
        "refund beyond what remains paid",
    );
    assert!(beyond.message().contains("2000"), "says how much can still be refunded: {}", beyond.message());

    let full = manager.refund(&order.id, usd(2000)).await.expect("the rest back");
    assert_eq!(payment_status_of(&full), pb::PaymentStatus::Refunded);
    assert_eq!(full.amount_paid, Some(usd(0)));
}

#[tokio::test]
async fn a_payment_in_another_currency_is_refused() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let agent = app.agent(&tenant);
    let refused = expect_code(
        agent.pay(&order.id, money(1000, "EUR")).await,
        tonic::Code::FailedPrecondition,
        "EUR on a USD order",
    );
    assert!(refused.message().contains("USD"), "{}", refused.message());
    let stored = agent.get(&order.id).await.expect("get");
    assert!(stored.payments.is_empty());
    assert_eq!(status_of(&stored), Status::PendingPayment);
}

#[tokio::test]
async fn a_payment_on_a_cancelled_order_is_refused() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.order_in(&tenant, "draft-1", Status::Cancelled).await;
    expect_code(
        app.agent(&tenant).pay(&order.id, usd(3000)).await,
        tonic::Code::FailedPrecondition,
        "payment on a cancelled order",
    );
    let stored = app.agent(&tenant).get(&order.id).await.expect("get");
    assert!(stored.payments.is_empty());
    assert_eq!(payment_status_of(&stored), pb::PaymentStatus::Pending);
}

#[tokio::test]
async fn agents_record_payments_but_only_managers_refund() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let viewer = app.caller(&tenant, testkit::Role::Viewer);
    expect_code(viewer.pay(&order.id, usd(1000)).await, tonic::Code::PermissionDenied, "viewer pays");
    let agent = app.agent(&tenant);
    agent.pay(&order.id, usd(1000)).await.expect("agent pays");
    expect_code(agent.refund(&order.id, usd(100)).await, tonic::Code::PermissionDenied, "agent refunds");
    let refunded = app.manager(&tenant).refund(&order.id, usd(100)).await.expect("manager refunds");
    assert_eq!(refunded.amount_paid, Some(usd(900)));
    let admin = app.caller(&tenant, testkit::Role::Admin);
    admin.refund(&order.id, usd(100)).await.expect("admin refunds");
}

#[tokio::test]
async fn a_payment_without_a_kind_or_amount_is_an_invalid_argument() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let agent = app.agent(&tenant);
    expect_code(
        agent.record(&order.id, pb::PaymentKind::Unspecified, usd(1000)).await,
        tonic::Code::InvalidArgument,
        "no kind",
    );
    expect_code(agent.pay(&order.id, money(1000, "dollars")).await, tonic::Code::InvalidArgument, "bad currency");
}
