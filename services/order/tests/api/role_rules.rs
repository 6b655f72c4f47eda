//! Who may do what: viewers read; agents move orders forward, record payments and edit; managers
//! and admins also cancel, return, refund and bulk-update; admins set the payment window; only the
//! service role creates orders. No or a bad token is UNAUTHENTICATED; a weak role PERMISSION_DENIED.

use std::sync::Arc;
use std::time::Duration;

use order::domain::lifecycle::Status;
use testkit::Role;

use crate::helpers::{Answer, Caller, Limited, Tenant, TestApp, item, order_request, pb, spawn_app, usd};

#[derive(Debug, Clone, Copy)]
enum Call {
    Get,
    List,
    Summary,
    GetSettings,
    MoveForward,
    Cancel,
    CancelThroughStatus,
    Return,
    BulkUpdate,
    Pay,
    Refund,
    Edit,
    SetPaymentWindow,
    Create,
}

const CALLS: [Call; 14] = [
    Call::Get,
    Call::List,
    Call::Summary,
    Call::GetSettings,
    Call::MoveForward,
    Call::Cancel,
    Call::CancelThroughStatus,
    Call::Return,
    Call::BulkUpdate,
    Call::Pay,
    Call::Refund,
    Call::Edit,
    Call::SetPaymentWindow,
    Call::Create,
];

/// The weakest tenant role allowed; `None`: the service role only.
fn least_role(call: Call) -> Option<Role> {
    match call {
        Call::Get | Call::List | Call::Summary | Call::GetSettings => Some(Role::Viewer),
        Call::MoveForward | Call::Pay | Call::Edit => Some(Role::Agent),
        Call::Cancel | Call::CancelThroughStatus | Call::Return | Call::BulkUpdate | Call::Refund => {
            Some(Role::Manager)
        }
        Call::SetPaymentWindow => Some(Role::Admin),
        Call::Create => None,
    }
}

fn rank(role: Role) -> Option<u8> {
    match role {
        Role::Viewer => Some(0),
        Role::Agent => Some(1),
        Role::Manager => Some(2),
        Role::Admin => Some(3),
        Role::Service | Role::Operator => None,
    }
}

fn expected(role: Role, call: Call) -> tonic::Code {
    let allowed = match (role, least_role(call)) {
        // Services act for their tenant up to agent level; manager and admin decisions need a person.
        (Role::Service, None) => true,
        (Role::Service, Some(least)) => rank(least).is_some_and(|need| need <= 1),
        (_, None) => false,
        (role, Some(least)) => rank(role).zip(rank(least)).is_some_and(|(have, need)| have >= need),
    };
    if allowed { tonic::Code::Ok } else { tonic::Code::PermissionDenied }
}

/// An order in the state the call needs to succeed when allowed.
async fn prepare(app: &TestApp, tenant: &Tenant, call: Call, key: &str) -> pb::Order {
    match call {
        Call::Return => app.order_in(tenant, key, Status::Delivered).await,
        Call::BulkUpdate => app.order_in(tenant, key, Status::Processing).await,
        Call::Refund => {
            let order = app.create_order(tenant, key, &[("SKU-1", 1000, 1)]).await;
            app.manager(tenant).pay(&order.id, usd(1000)).await.expect("pay")
        }
        _ => app.create_order(tenant, key, &[("SKU-1", 1000, 1)]).await,
    }
}

async fn attempt(caller: &Caller, call: Call, order: &pb::Order, key: &str) -> Answer<()> {
    let id = order.id.as_str();
    match call {
        Call::Get => caller.get(id).await.map(drop),
        Call::List => caller.list(pb::ListOrdersRequest::default()).await.map(drop),
        Call::Summary => caller.summary(pb::OrderFilter::default()).await.map(drop),
        Call::GetSettings => caller.settings().await.map(drop),
        Call::MoveForward => caller.set_status(id, Status::Confirmed, "", 0).await.map(drop),
        Call::Cancel => caller.cancel(id, "changed mind", 0).await.map(drop),
        Call::CancelThroughStatus => caller.set_status(id, Status::Cancelled, "changed mind", 0).await.map(drop),
        Call::Return => caller.set_status(id, Status::Returned, "damaged", 0).await.map(drop),
        Call::BulkUpdate => {
            let results = caller.bulk(&[id], Status::Shipped, "").await?;
            assert!(results[0].ok, "an allowed bulk update moves the order: {results:?}");
            Ok(())
        }
        Call::Pay => caller.pay(id, usd(1000)).await.map(drop),
        Call::Refund => caller.refund(id, usd(100)).await.map(drop),
        Call::Edit => {
            let request =
                pb::UpdateOrderRequest { order_id: id.into(), notes: Some("hi".into()), ..Default::default() };
            caller.update(request).await.map(drop)
        }
        Call::SetPaymentWindow => caller.set_payment_window(30).await.map(drop),
        Call::Create => {
            caller.create(order_request(&format!("{key}-new"), vec![item("SKU-1", 1000, 1)])).await.map(drop)
        }
    }
}

#[tokio::test]
async fn each_role_may_do_exactly_what_its_rank_allows() {
    let app = Arc::new(spawn_app().await);
    let mut cases = Limited::new();
    for role in [Role::Viewer, Role::Agent, Role::Manager, Role::Admin, Role::Service, Role::Operator] {
        for call in CALLS {
            let app = app.clone();
            cases.spawn(async move {
                // A tenant per case, so settings and lists of one case never meet another's.
                let tenant = Tenant::new();
                let key = format!("draft-{role}-{call:?}");
                let order = prepare(&app, &tenant, call, &key).await;
                let code = match attempt(&app.caller(&tenant, role), call, &order, &key).await {
                    Ok(()) => tonic::Code::Ok,
                    Err(status) => status.code(),
                };
                let want = expected(role, call);
                (code == want).then_some(()).ok_or(format!("{role} {call:?}: got {code:?}, expected {want:?}"))
            });
        }
    }
    let mut failures: Vec<String> = cases.results().await.into_iter().filter_map(Result::err).collect();
    failures.sort();
    assert!(failures.is_empty(), "role rules broken:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_call_without_a_valid_token_is_unauthenticated() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.order_in(&tenant, "draft-1", Status::Delivered).await;
    let forged =
        auth::JwtKeys::new(b"not-the-secret").mint("mallory", Some(tenant.id), Role::Admin, Duration::from_secs(60));
    for (who, caller) in [("no token", app.anonymous()), ("a forged token", app.with_token(forged))] {
        for call in CALLS {
            let result = attempt(&caller, call, &order, "draft-x").await;
            let code = result.err().map(|s| s.code());
            assert_eq!(code, Some(tonic::Code::Unauthenticated), "{who}: {call:?}");
        }
    }
    let stored = app.manager(&tenant).get(&order.id).await.expect("get");
    assert_eq!(stored.version, order.version, "nothing changed");
}

#[tokio::test]
async fn a_tenant_role_without_a_tenant_is_permission_denied() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let tenantless = app.with_token(testkit::token(None, Role::Admin));
    for call in [Call::Get, Call::List, Call::MoveForward, Call::Cancel] {
        let code = attempt(&tenantless, call, &order, "draft-x").await.err().map(|s| s.code());
        assert_eq!(code, Some(tonic::Code::PermissionDenied), "{call:?}");
    }
}
