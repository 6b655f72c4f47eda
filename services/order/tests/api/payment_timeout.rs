//! The payment timeout: with a tenant's payment window set, an order left unpaid past it is
//! cancelled by the service (reason `payment_timeout`, source system), which announces
//! `order.cancelled` so its stock is released. Off by default.
//!
//! No sleeps: orders are aged in the database, and the orders that must stay are aged in the same
//! statement as one that must go, so the sweep that cancels that one has seen them too.

use events::order::OrderCancelled;
use order::domain::lifecycle::Status;
use testkit::Role;

use crate::helpers::{PATIENCE, Tenant, TestApp, pb, spawn_app, status_of, usd};

fn two_minutes_ago() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::minutes(2)
}

async fn status_in(app: &TestApp, tenant: &Tenant, order_id: &str) -> Status {
    status_of(&app.caller(tenant, Role::Viewer).get(order_id).await.expect("get"))
}

async fn wait_cancelled(app: &TestApp, tenant: &Tenant, order_id: &str) -> pb::Order {
    let viewer = app.caller(tenant, Role::Viewer);
    testkit::eventually("the payment timeout cancels the order", PATIENCE, || async {
        status_of(&viewer.get(order_id).await.expect("get")) == Status::Cancelled
    })
    .await;
    viewer.get(order_id).await.expect("get")
}

#[tokio::test]
async fn an_unpaid_order_past_the_window_is_cancelled_with_payment_timeout() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let admin = app.caller(&tenant, Role::Admin);
    let settings = admin.set_payment_window(1).await.expect("set the window");
    assert_eq!(settings.payment_window_minutes, 1);
    assert_eq!(admin.settings().await.expect("get settings").payment_window_minutes, 1);

    let mut request = crate::helpers::order_request("draft-late", vec![crate::helpers::item("SKU-1", 1000, 2)]);
    request.reservation_reference = "draft-late:v1".into();
    let late = app.service(&tenant).create(request).await.expect("create");
    let fresh = app.create_order(&tenant, "draft-fresh", &[("SKU-1", 1000, 1)]).await;
    let paid = app.create_order(&tenant, "draft-paid", &[("SKU-1", 1000, 1)]).await;
    app.agent(&tenant).pay(&paid.id, usd(1000)).await.expect("pay");
    app.set_created_at(&[&late.id, &paid.id], two_minutes_ago()).await;

    let cancelled = wait_cancelled(&app, &tenant, &late.id).await;
    let last = cancelled.history.last().expect("history");
    assert_eq!(last.from, pb::OrderStatus::PendingPayment as i32);
    assert_eq!((last.reason.as_str(), last.source.as_str()), ("payment_timeout", "system"));
    assert_eq!(last.actor_user, "", "no person cancelled it");
    assert!(!last.actor_service.is_empty(), "the service itself is the actor");

    let viewer = app.caller(&tenant, Role::Viewer);
    assert_eq!(status_of(&viewer.get(&fresh.id).await.expect("get")), Status::PendingPayment, "within the window");
    assert_eq!(status_of(&viewer.get(&paid.id).await.expect("get")), Status::Confirmed, "already paid");

    let events: Vec<OrderCancelled> = app.order_events::<OrderCancelled>().await.into_iter().map(|(_, e)| e).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, late.id);
    assert_eq!(events[0].reason, "payment_timeout");
    assert_eq!(events[0].reservation_reference, "draft-late:v1", "inventory can release the stock");
}

#[tokio::test]
async fn with_the_window_at_zero_nothing_is_cancelled() {
    let app = spawn_app().await;
    let (default, switched_off, on) = (Tenant::new(), Tenant::new(), Tenant::new());
    let off_admin = app.caller(&switched_off, Role::Admin);
    off_admin.set_payment_window(1).await.expect("on");
    off_admin.set_payment_window(0).await.expect("off again");
    app.caller(&on, Role::Admin).set_payment_window(1).await.expect("on");
    assert_eq!(app.caller(&default, Role::Viewer).settings().await.expect("settings").payment_window_minutes, 0);

    let untouched = app.create_order(&default, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let also_untouched = app.create_order(&switched_off, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let witness = app.create_order(&on, "draft-1", &[("SKU-1", 1000, 1)]).await;
    app.set_created_at(&[&untouched.id, &also_untouched.id, &witness.id], two_minutes_ago()).await;

    wait_cancelled(&app, &on, &witness.id).await;
    assert_eq!(status_in(&app, &default, &untouched.id).await, Status::PendingPayment, "the default is off");
    assert_eq!(status_in(&app, &switched_off, &also_untouched.id).await, Status::PendingPayment, "0 switches it off");
}

#[tokio::test]
async fn only_an_admin_sets_the_payment_window_and_it_must_be_sane() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    for role in [Role::Viewer, Role::Agent, Role::Manager] {
        crate::helpers::expect_code(
            app.caller(&tenant, role).set_payment_window(30).await,
            tonic::Code::PermissionDenied,
            &format!("{role} sets the window"),
        );
    }
    let admin = app.caller(&tenant, Role::Admin);
    crate::helpers::expect_code(admin.set_payment_window(-1).await, tonic::Code::InvalidArgument, "negative window");
    assert_eq!(admin.settings().await.expect("settings").payment_window_minutes, 0);
}
