//! BulkUpdateOrderStatus: each order succeeds or fails on its own, with a per-order error.

use events::order::OrderStatusChanged;
use order::domain::lifecycle::Status;
use testkit::Role;
use uuid::Uuid;

use crate::helpers::{Tenant, TestApp, expect_code, pb, spawn_app, status_of};

struct Mixed {
    legal: Vec<String>,
    illegal: String,
    unknown: String,
    foreign: String,
    tenant: Tenant,
    other: Tenant,
}

/// Three processing orders, one still awaiting payment, an id nobody has, another tenant's order.
async fn mixed(app: &TestApp) -> Mixed {
    let (tenant, other) = (Tenant::new(), Tenant::new());
    let mut legal = Vec::new();
    for n in 1..=3 {
        legal.push(app.order_in(&tenant, &format!("draft-{n}"), Status::Processing).await.id);
    }
    let illegal = app.create_order(&tenant, "draft-4", &[("SKU-1", 1000, 1)]).await.id;
    let foreign = app.order_in(&other, "draft-1", Status::Processing).await.id;
    Mixed { legal, illegal, unknown: Uuid::new_v4().to_string(), foreign, tenant, other }
}

impl Mixed {
    fn ids(&self) -> Vec<&str> {
        vec![&self.legal[0], &self.illegal, &self.legal[1], &self.unknown, &self.foreign, &self.legal[2]]
    }
}

#[tokio::test]
async fn a_bulk_update_moves_the_legal_orders_and_reports_each_failure() {
    let app = spawn_app().await;
    let m = mixed(&app).await;
    let manager = app.manager(&m.tenant);
    let results = manager.bulk(&m.ids(), Status::Shipped, "courier picked up").await.expect("bulk");

    let outcome: Vec<(&str, bool, &str)> =
        results.iter().map(|r| (r.order_id.as_str(), r.ok, r.error_message.as_str())).collect();
    assert_eq!(
        outcome,
        [
            (m.legal[0].as_str(), true, ""),
            (m.illegal.as_str(), false, "order is pending_payment; it can move to confirmed, cancelled"),
            (m.legal[1].as_str(), true, ""),
            (m.unknown.as_str(), false, "order not found"),
            (m.foreign.as_str(), false, "order not found"),
            (m.legal[2].as_str(), true, ""),
        ],
        "one result per order, in request order"
    );
    for result in results.iter().filter(|r| r.ok) {
        assert_eq!(status_of(result.order.as_ref().expect("the moved order")), Status::Shipped);
    }
    assert!(results.iter().filter(|r| !r.ok).all(|r| r.order.is_none() && !r.error_code.is_empty()));

    for id in &m.legal {
        let order = manager.get(id).await.expect("get");
        assert_eq!(status_of(&order), Status::Shipped, "legal ones moved");
        assert_eq!(order.history.last().expect("history").reason, "courier picked up");
    }
    assert_eq!(status_of(&manager.get(&m.illegal).await.expect("get")), Status::PendingPayment);
    let foreign = app.manager(&m.other).get(&m.foreign).await.expect("get own order");
    assert_eq!(status_of(&foreign), Status::Processing, "another tenant's order untouched");

    let shipped: Vec<String> = app
        .order_events::<OrderStatusChanged>()
        .await
        .into_iter()
        .filter(|(_, e)| e.to == "shipped")
        .map(|(_, e)| e.order_id)
        .collect();
    assert_eq!(shipped, m.legal, "one event per order moved");
}

#[tokio::test]
async fn bulk_results_name_the_grpc_code_of_each_failure() {
    let app = spawn_app().await;
    let m = mixed(&app).await;
    let results = app.manager(&m.tenant).bulk(&m.ids(), Status::Shipped, "").await.expect("bulk");
    let codes: Vec<&str> = results.iter().map(|r| r.error_code.as_str()).collect();
    assert_eq!(codes, ["", "FAILED_PRECONDITION", "", "NOT_FOUND", "NOT_FOUND", ""]);
}

#[tokio::test]
async fn only_managers_and_admins_bulk_update_and_the_list_is_bounded() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.order_in(&tenant, "draft-1", Status::Processing).await;
    for role in [Role::Viewer, Role::Agent] {
        expect_code(
            app.caller(&tenant, role).bulk(&[&order.id], Status::Shipped, "").await,
            tonic::Code::PermissionDenied,
            &format!("{role} bulk-updates"),
        );
    }
    let manager = app.manager(&tenant);
    expect_code(manager.bulk(&[], Status::Shipped, "").await, tonic::Code::InvalidArgument, "no ids");
    let too_many: Vec<String> = (0..501).map(|_| Uuid::new_v4().to_string()).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    expect_code(manager.bulk(&too_many, Status::Shipped, "").await, tonic::Code::InvalidArgument, "501 ids");
    assert_eq!(status_of(&manager.get(&order.id).await.expect("get")), Status::Processing);

    let admin = app.caller(&tenant, Role::Admin);
    let results = admin.bulk(&[&order.id], Status::Cancelled, "warehouse fire").await.expect("admin bulk-cancels");
    assert!(results[0].ok);
    let order = manager.get(&order.id).await.expect("get");
    assert_eq!(status_of(&order), Status::Cancelled);
    assert_eq!(order.payment_status, pb::PaymentStatus::Pending as i32);
}
