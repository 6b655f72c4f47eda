//! Every transition writes a status-history row (from, to, reason, actor, source) that GetOrder
//! shows, and every change an audit row.

use std::time::Duration;

use order::domain::lifecycle::Status;
use testkit::Role;
use uuid::Uuid;

use crate::helpers::{Tenant, expect_code, pb, pb_status, spawn_app, usd};

/// A service token acting for a user (`act`), as the draft service calls on a seller's behalf.
fn service_token_for(tenant: &Tenant, service: &str, user: &str) -> String {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    auth::JwtKeys::new(auth::DEV_JWT_SECRET.as_bytes()).sign(&auth::Claims {
        sub: service.into(),
        tenant_id: Some(tenant.id),
        role: Role::Service,
        exp,
        act: Some(user.into()),
    })
}

/// (from, to, reason, actor_user, actor_service, source) of a history row.
fn row(change: &pb::StatusChange) -> (pb::OrderStatus, pb::OrderStatus, &str, &str, &str, &str) {
    (
        pb::OrderStatus::try_from(change.from).expect("from"),
        pb::OrderStatus::try_from(change.to).expect("to"),
        change.reason.as_str(),
        change.actor_user.as_str(),
        change.actor_service.as_str(),
        change.source.as_str(),
    )
}

#[tokio::test]
async fn each_transition_adds_a_history_row_with_reason_actor_and_source() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let manager = app.manager(&tenant);
    manager.set_status(&order.id, Status::Confirmed, "customer paid cash", 0).await.expect("confirm");
    let for_alice = app.with_token(service_token_for(&tenant, "draft", "alice"));
    for_alice.set_status(&order.id, Status::Processing, "", 0).await.expect("process");
    manager.cancel(&order.id, "out of stock", 0).await.expect("cancel");

    let history = manager.get(&order.id).await.expect("get").history;
    let rows: Vec<_> = history.iter().map(row).collect();
    use pb::OrderStatus::*;
    assert_eq!(
        rows,
        [
            (Unspecified, PendingPayment, "created", "", "test-user", "user"),
            (PendingPayment, Confirmed, "customer paid cash", "test-user", "", "user"),
            (Confirmed, Processing, "", "alice", "draft", "user"),
            (Processing, Cancelled, "out of stock", "test-user", "", "user"),
        ]
    );
    assert!(history.iter().all(|h| h.at.is_some()), "every row says when");
}

#[tokio::test]
async fn every_change_writes_an_audit_row() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 2)]).await;
    let manager = app.manager(&tenant);
    manager.pay(&order.id, usd(500)).await.expect("partial payment");
    let edit =
        pb::UpdateOrderRequest { order_id: order.id.clone(), notes: Some("ring twice".into()), ..Default::default() };
    manager.update(edit).await.expect("edit");
    manager.pay(&order.id, usd(1500)).await.expect("the rest");
    manager.refund(&order.id, usd(200)).await.expect("refund");
    manager.set_status(&order.id, Status::Processing, "packing", 0).await.expect("process");
    // Refusals change nothing, so they leave no trace either.
    expect_code(manager.move_to(&order.id, Status::Delivered).await, tonic::Code::FailedPrecondition, "skip");

    let rows: Vec<(String, Option<String>, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT action, actor_user, actor_service, changes FROM orders.audit_log WHERE order_id = $1 ORDER BY id",
    )
    .bind(order.id.parse::<Uuid>().expect("uuid"))
    .fetch_all(&app.admin)
    .await
    .expect("audit rows");
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(actions, ["created", "payment", "edited", "payment", "status_changed", "refund", "status_changed"]);
    assert_eq!(rows[0].2.as_deref(), Some("test-user"), "the creating service");
    assert!(rows[1..].iter().all(|r| r.1.as_deref() == Some("test-user")), "the manager: {rows:?}");
    assert_eq!(rows[2].3["notes"], serde_json::json!({ "from": "", "to": "ring twice" }));
    assert_eq!(rows[4].3["to"], "confirmed");
    assert_eq!(rows[4].3["reason"], "paid");
    assert_eq!(rows[5].3["amount_minor"], 200);
    assert_eq!(rows[6].3, serde_json::json!({ "from": "confirmed", "to": "processing", "reason": "packing" }));

    let order = manager.get(&order.id).await.expect("get");
    let statuses: Vec<i32> = order.history.iter().map(|h| h.to).collect();
    let expected: Vec<i32> =
        [Status::PendingPayment, Status::Confirmed, Status::Processing].map(|s| pb_status(s) as i32).to_vec();
    assert_eq!(statuses, expected, "the refused skip left no history row");
    assert_eq!(order.payments.len(), 3);
}

#[tokio::test]
async fn history_rows_keep_their_time_order() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.order_in(&tenant, "draft-1", Status::Returned).await;
    let history = app.manager(&tenant).get(&order.id).await.expect("get").history;
    assert_eq!(history.len(), 6);
    for pair in history.windows(2) {
        assert_eq!(pair[0].to, pair[1].from, "each row starts where the previous ended");
        let (a, b) = (pair[0].at.expect("at"), pair[1].at.expect("at"));
        let a = Duration::new(a.seconds as u64, a.nanos as u32);
        let b = Duration::new(b.seconds as u64, b.nanos as u32);
        assert!(a <= b, "rows in time order");
    }
}

#[tokio::test]
async fn lines_history_and_audit_keep_autoanalyze_small_on_every_column() {
    // Append-only, read by key: a small sample does (migration `20261123000001_statistics.sql`).
    let app = spawn_app().await;
    testkit::assert_small_statistics(&app.admin, &["orders.order_items", "orders.status_history", "orders.audit_log"])
        .await;
}

#[tokio::test]
async fn orders_keep_statistics_only_on_the_columns_queries_filter_sort_and_group_on() {
    // Migration `20261123000002_order_statistics.sql`: the rest cost autoanalyze CPU for nothing.
    // A column added later starts at the default and shows up here: decide which it is.
    let app = spawn_app().await;
    let analyzed: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute
         WHERE attrelid = 'orders.orders'::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget <> 0
         ORDER BY 1",
    )
    .fetch_all(&app.admin)
    .await
    .expect("statistics targets");
    assert_eq!(
        analyzed,
        [
            "created_at",
            "currency",
            "id",
            "payment_status",
            "search_text",
            "source",
            "status",
            "tenant_id",
            "total_minor"
        ]
    );
}
