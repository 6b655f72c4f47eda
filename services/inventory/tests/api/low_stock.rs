//! `inventory.low_stock` is published once each time available stock crosses below the
//! threshold, not on every change below it.

use events::inventory::LowStock;
use testkit::Role;

use crate::helpers::{Tenant, TestApp, spawn_app};

async fn low_stock_events(app: &TestApp) -> Vec<LowStock> {
    app.wait_outbox_drained().await;
    app.inventory_events::<LowStock>().await.into_iter().map(|(_, event)| event).collect()
}

fn low(sku: &str, available: i64, threshold: i64) -> LowStock {
    LowStock { sku: sku.into(), location: "default".into(), available, threshold }
}

#[tokio::test]
async fn crossing_below_the_threshold_publishes_low_stock_once_per_crossing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let manager = app.manager(&tenant);
    let level = manager.set_threshold("A", 5).await.expect("threshold");
    assert_eq!(level.low_stock_threshold, 5);

    // (reference reserved (+) or released (-), available afterwards, low-stock events so far)
    let table: &[(&str, i64, usize)] = &[
        ("+r1", 9, 0),
        ("+r2", 8, 0),
        ("+r3", 7, 0),
        ("+r4", 6, 0),
        ("+r5", 5, 0),
        ("+r6", 4, 1),
        ("+r7", 3, 1),
        ("+r8", 2, 1),
        ("-r8", 3, 1),
        ("-r7", 4, 1),
        ("-r6", 5, 1),
        ("-r5", 6, 1),
        ("+r9", 5, 1),
        ("+r10", 4, 2),
        ("+r11", 3, 2),
    ];
    for (step, expected_available, expected_events) in table {
        let (change, reference) = step.split_at(1);
        if change == "+" {
            manager.reserve(reference, &[("A", 1)]).await.expect("reserve");
        } else {
            manager.release(reference).await.expect("release");
        }
        assert_eq!(manager.level("A").await.available, *expected_available, "after {step}");
        assert_eq!(low_stock_events(&app).await.len(), *expected_events, "after {step}");
    }
    assert_eq!(low_stock_events(&app).await, [low("A", 4, 5), low("A", 4, 5)]);
}

#[tokio::test]
async fn the_tenants_default_threshold_applies_to_skus_without_their_own() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.caller(&tenant, Role::Admin).update_settings("", 3).await.expect("default threshold");
    app.seed(&tenant, &[("B", 4)]).await;
    let manager = app.manager(&tenant);
    assert_eq!(manager.level("B").await.low_stock_threshold, 3);

    manager.reserve("r1", &[("B", 1)]).await.expect("reserve");
    assert!(low_stock_events(&app).await.is_empty(), "3 available is not below 3");
    manager.reserve("r2", &[("B", 2)]).await.expect("reserve");
    assert_eq!(low_stock_events(&app).await, [low("B", 1, 3)]);
    manager.adjust(crate::helpers::received("B", 10)).await.expect("restocked");
    manager.reserve("r3", &[("B", 9)]).await.expect("reserve");
    assert_eq!(low_stock_events(&app).await, [low("B", 1, 3), low("B", 2, 3)]);
}

#[tokio::test]
async fn changing_the_default_threshold_rechecks_the_skus_that_follow_it() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let admin = app.caller(&tenant, Role::Admin);
    app.seed(&tenant, &[("A", 4), ("B", 4), ("C", 10)]).await;
    let manager = app.manager(&tenant);
    manager.set_threshold("B", 2).await.expect("B has its own threshold");

    // Raised above A's available stock: A alerts at once; B keeps its own threshold; C is above.
    admin.update_settings("", 5).await.expect("default raised");
    assert_eq!(low_stock_events(&app).await, [low("A", 4, 5)]);
    // The same default again, or another movement while still low: no second alert.
    admin.update_settings("", 5).await.expect("default unchanged");
    manager.reserve("r1", &[("A", 1)]).await.expect("reserve");
    assert_eq!(low_stock_events(&app).await, [low("A", 4, 5)]);

    // Lowered below it, the dip is over; raised again, A alerts again.
    admin.update_settings("", 2).await.expect("default lowered");
    admin.update_settings("", 6).await.expect("default raised again");
    assert_eq!(low_stock_events(&app).await, [low("A", 4, 5), low("A", 3, 6)]);
    assert_eq!(manager.level("A").await.low_stock_threshold, 6);
    assert_eq!(manager.level("B").await.low_stock_threshold, 2);
}

#[tokio::test]
async fn another_tenants_default_threshold_does_not_touch_these_skus() {
    let app = spawn_app().await;
    let (ours, theirs) = (Tenant::new(), Tenant::new());
    app.seed(&ours, &[("A", 4)]).await;
    app.seed(&theirs, &[("A", 4)]).await;
    app.caller(&theirs, Role::Admin).update_settings("", 5).await.expect("their default raised");
    app.wait_outbox_drained().await;
    let alerts = app.inventory_events::<LowStock>().await;
    let tenants: Vec<_> = alerts.iter().map(|(envelope, _)| envelope.tenant_id).collect();
    assert_eq!(tenants, [theirs.id], "only their SKU alerts");
    assert_eq!(app.manager(&ours).level("A").await.low_stock_threshold, 0);
}
