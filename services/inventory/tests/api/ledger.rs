//! The stock ledger: every change to on_hand or reserved is a row, and replaying the rows gives
//! the current levels. Adjustments apply once per idempotency key and never below what is
//! reserved.

use std::collections::BTreeMap;

use testkit::Role;
use tokio::task::JoinSet;
use tonic::Code;

use crate::helpers::{Tenant, TestApp, adjustment, assert_status, counted, item, pb, received, spawn_app};

/// (on_hand, reserved) per SKU, replayed from the ledger.
async fn replayed(app: &TestApp, tenant: &Tenant) -> BTreeMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT sku, sum(on_hand_delta)::bigint, sum(reserved_delta)::bigint FROM inventory.stock_ledger
         WHERE tenant_id = $1 GROUP BY sku",
    )
    .bind(tenant.id)
    .fetch_all(&app.admin)
    .await
    .expect("replay ledger");
    rows.into_iter().map(|(sku, on_hand, reserved)| (sku, (on_hand, reserved))).collect()
}

async fn current(app: &TestApp, tenant: &Tenant) -> BTreeMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, reserved FROM inventory.stock_levels WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_all(&app.admin)
            .await
            .expect("stock levels");
    rows.into_iter().map(|(sku, on_hand, reserved)| (sku, (on_hand, reserved))).collect()
}

fn with_key(mut request: pb::AdjustStockRequest, key: &str) -> pb::AdjustStockRequest {
    request.idempotency_key = key.into();
    request
}

#[tokio::test]
async fn replaying_the_ledger_gives_the_current_stock_levels() {
    use pb::AdjustmentReason::{Damaged, Returned};
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    manager
        .upsert(vec![item("A", "Anklet", 900), item("B", "Bangle", 1500), item("C", "Cuff", 700)], false)
        .await
        .expect("catalog");

    manager.adjust(with_key(received("A", 20), "delivery-1")).await.expect("received");
    manager.adjust(with_key(received("A", 20), "delivery-1")).await.expect("the same delivery, retried");
    manager.adjust(adjustment("A", Damaged, -3)).await.expect("damaged");
    manager.adjust(counted("A", 15)).await.expect("counted");
    manager.adjust(adjustment("A", Returned, 2)).await.expect("returned");
    manager.adjust(received("B", 5)).await.expect("received");
    manager.adjust(received("C", 1)).await.expect("received");
    manager.adjust(adjustment("C", Damaged, -1)).await.expect("damaged");
    manager.reserve("r1", &[("A", 4), ("B", 2)]).await.expect("r1");
    manager.reserve("r2", &[("A", 3)]).await.expect("r2");
    manager.release("r2").await.expect("release r2");
    manager.commit("r1").await.expect("commit r1");
    manager.restock("r1").await.expect("restock r1");
    manager.reserve("r3", &[("A", 5), ("B", 1)]).await.expect("r3");
    manager.reserve("r4", &[("B", 1)]).await.expect("r4");
    manager.commit("r4").await.expect("commit r4");

    let levels = current(&app, &tenant).await;
    let expected: BTreeMap<String, (i64, i64)> =
        [("A".to_string(), (17, 5)), ("B".to_string(), (4, 1)), ("C".to_string(), (0, 0))].into();
    assert_eq!(levels, expected);
    assert_eq!(replayed(&app, &tenant).await, levels);
    let received_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.stock_ledger WHERE tenant_id = $1 AND sku = 'A' AND reason = 'received'",
    )
    .bind(tenant.id)
    .fetch_one(&app.admin)
    .await
    .expect("count");
    assert_eq!(received_rows, 1, "the retried delivery applied once");
}

#[tokio::test]
async fn adjustments_that_would_go_below_what_is_reserved_or_name_unknown_skus_are_refused() {
    use pb::AdjustmentReason::{Damaged, Received};
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let manager = app.manager(&tenant);
    manager.reserve("r1", &[("A", 6)]).await.expect("reserve");

    let table: &[(pb::AdjustStockRequest, Code)] = &[
        (adjustment("A", Damaged, -5), Code::FailedPrecondition),
        (counted("A", 5), Code::FailedPrecondition),
        (adjustment("A", Damaged, -11), Code::FailedPrecondition),
        (adjustment("NOT-IN-CATALOG", Received, 5), Code::NotFound),
        (counted("NOT-IN-CATALOG", 5), Code::NotFound),
    ];
    for (request, code) in table {
        assert_status(manager.adjust(request.clone()).await, *code, &[]);
    }
    let level = manager.level("A").await;
    assert_eq!((level.on_hand, level.reserved), (10, 6), "nothing moved");
    // Exactly down to what is reserved is fine.
    let level = manager.adjust(adjustment("A", Damaged, -4)).await.expect("down to reserved");
    assert_eq!((level.on_hand, level.reserved, level.available), (6, 6, 0));
    assert_eq!(replayed(&app, &tenant).await, current(&app, &tenant).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_adjustment_apply_once_and_all_succeed() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 0)]).await;
    let manager = app.manager(&tenant);

    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let manager = manager.clone();
        calls.spawn(async move { manager.adjust(with_key(received("A", 7), "delivery-42")).await });
    }
    while let Some(joined) = calls.join_next().await {
        let level = joined.expect("task").expect("every retry is answered with the stock level");
        assert_eq!(level.on_hand, 7);
    }
    assert_eq!(app.caller(&tenant, Role::Viewer).level("A").await.on_hand, 7);
    assert_eq!(replayed(&app, &tenant).await, current(&app, &tenant).await);
}

#[tokio::test]
async fn the_ledger_and_reservation_items_keep_autoanalyze_small_on_every_column() {
    // Append-only, read by key: a small sample does (migration `20261123000001_statistics.sql`).
    let app = spawn_app().await;
    testkit::assert_small_statistics(&app.admin, &["inventory.stock_ledger", "inventory.reservation_items"]).await;
}
