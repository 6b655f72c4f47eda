//! Malformed requests are refused with INVALID_ARGUMENT and change nothing.

use tonic::Code;

use crate::helpers::{Tenant, adjustment, assert_status, counted, pb, reserve_item, spawn_app};

#[tokio::test]
async fn malformed_reservations_are_invalid_arguments_and_change_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let manager = app.manager(&tenant);
    let long_reference = "r".repeat(201);

    // (what is wrong, reference, items)
    let table: Vec<(&str, &str, Vec<pb::ReserveItem>)> = vec![
        ("zero quantity", "r1", vec![reserve_item("A", 0)]),
        ("negative quantity", "r1", vec![reserve_item("A", -1)]),
        ("one bad line among good ones", "r1", vec![reserve_item("A", 1), reserve_item("A", -5)]),
        ("no items", "r1", vec![]),
        ("empty reference", "", vec![reserve_item("A", 1)]),
        ("blank reference", "   ", vec![reserve_item("A", 1)]),
        ("reference too long", &long_reference, vec![reserve_item("A", 1)]),
        ("empty sku", "r1", vec![reserve_item("", 1)]),
        ("sku with a space", "r1", vec![reserve_item("A B", 1)]),
        ("sku with a quote", "r1", vec![reserve_item("A'; DROP TABLE x;--", 1)]),
        ("sku with an emoji", "r1", vec![reserve_item("A🙂", 1)]),
        ("sku too long", "r1", vec![reserve_item(&"A".repeat(65), 1)]),
    ];
    for (wrong, reference, items) in table {
        let outcome = manager.reserve_items(reference, items).await;
        assert_eq!(outcome.map_err(|s| s.code()).err(), Some(Code::InvalidArgument), "{wrong}");
    }
    let level = manager.level("A").await;
    assert_eq!((level.on_hand, level.reserved), (10, 0));
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.reservations").await, 0);
}

#[tokio::test]
async fn malformed_adjustments_and_queries_are_invalid_arguments() {
    use pb::AdjustmentReason::{Damaged, Received, Returned, Unspecified};
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let manager = app.manager(&tenant);

    let adjustments = [
        ("received needs a positive delta", adjustment("A", Received, -1)),
        ("received of nothing", adjustment("A", Received, 0)),
        ("returned needs a positive delta", adjustment("A", Returned, -2)),
        ("damaged needs a negative delta", adjustment("A", Damaged, 3)),
        ("no reason", adjustment("A", Unspecified, 3)),
        ("unknown reason", pb::AdjustStockRequest { reason: 99, ..adjustment("A", Received, 3) }),
        ("negative count", counted("A", -1)),
        ("bad sku", adjustment("A B", Received, 3)),
    ];
    for (wrong, request) in adjustments {
        assert_eq!(manager.adjust(request).await.map_err(|s| s.code()).err(), Some(Code::InvalidArgument), "{wrong}");
    }
    assert_eq!(manager.level("A").await.on_hand, 10);

    assert_status(manager.set_threshold("A", -1).await, Code::InvalidArgument, &[]);
    let too_many = (0..10_001).map(|i| crate::helpers::item(&format!("S{i}"), "Bulk", 1)).collect();
    assert_status(manager.upsert(too_many, false).await, Code::InvalidArgument, &["10,000"]);
    let skus: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
    let sku_refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    assert_status(manager.stock(&sku_refs).await, Code::InvalidArgument, &["1,000"]);
    assert_status(manager.search(&"q".repeat(501), 10).await, Code::InvalidArgument, &[]);
    assert_status(manager.import_csv("sku,title\nA,B\n", false).await, Code::InvalidArgument, &["header"]);
    assert_status(manager.list(10, "!!").await, Code::InvalidArgument, &[]);
    let admin = app.caller(&tenant, testkit::Role::Admin);
    assert_status(admin.update_settings("US", 0).await, Code::InvalidArgument, &[]);
    assert_status(admin.update_settings("USD", -1).await, Code::InvalidArgument, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_that_overflow_when_added_up_are_refused_and_the_service_keeps_reserving() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let agent = app.caller(&tenant, testkit::Role::Agent);

    let outcome = agent.reserve("huge", &[("A", i64::MAX), ("A", i64::MAX)]).await;
    let code = outcome.map_err(|s| s.code()).err();
    assert!(matches!(code, Some(Code::InvalidArgument | Code::FailedPrecondition)), "refused: {code:?}");
    agent.reserve("normal", &[("A", 1)]).await.expect("the service still reserves");
    let level = agent.level("A").await;
    assert_eq!((level.on_hand, level.reserved), (10, 1));
}
