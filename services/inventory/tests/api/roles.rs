//! Who may do what: viewers read, agents reserve and release, managers change the catalog and
//! stock, admins the settings; services act for their tenant; nobody acts without a valid token.

use std::time::Duration;

use testkit::Role;
use tonic::Code;

use crate::helpers::{Caller, Tenant, TestApp, item, received, spawn_app};

#[derive(Debug, Clone, Copy)]
enum Operation {
    GetStock,
    Reserve,
    Release,
    UpsertCatalog,
    AdjustStock,
    UpdateSettings,
}

async fn attempt(app: &TestApp, tenant: &Tenant, caller: &Caller, operation: Operation, n: usize) -> Result<(), Code> {
    let reference = format!("roles:{n}");
    let outcome = match operation {
        Operation::GetStock => caller.stock(&["A"]).await.map(drop),
        Operation::Reserve => caller.reserve(&reference, &[("A", 1)]).await.map(drop),
        Operation::Release => {
            app.manager(tenant).reserve(&reference, &[("A", 1)]).await.expect("set up a held reservation");
            caller.release(&reference).await.map(drop)
        }
        Operation::UpsertCatalog => caller.upsert(vec![item(&format!("NEW-{n}"), "New", 100)], false).await.map(drop),
        Operation::AdjustStock => caller.adjust(received("A", 1)).await.map(drop),
        Operation::UpdateSettings => caller.update_settings("USD", 0).await.map(drop),
    };
    outcome.map_err(|status| status.code())
}

#[tokio::test]
async fn each_role_may_do_what_its_rank_allows_and_nothing_more() {
    use Operation::*;
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 1000)]).await;

    let ok = Ok(());
    let denied = Err(Code::PermissionDenied);
    let unauthenticated = Err(Code::Unauthenticated);
    let forged = auth::JwtKeys::new(b"not-the-secret").mint("x", Some(tenant.id), Role::Admin, Duration::from_secs(60));
    let callers: Vec<(&str, Caller)> = vec![
        ("no token", app.anonymous()),
        ("forged token", app.with_token(forged)),
        ("viewer", app.caller(&tenant, Role::Viewer)),
        ("agent", app.caller(&tenant, Role::Agent)),
        ("manager", app.caller(&tenant, Role::Manager)),
        ("admin", app.caller(&tenant, Role::Admin)),
        ("service", app.caller(&tenant, Role::Service)),
        ("operator", app.with_token(testkit::token(None, Role::Operator))),
    ];
    // (caller, operation, outcome)
    let table: &[(&str, Operation, Result<(), Code>)] = &[
        ("no token", GetStock, unauthenticated),
        ("no token", Reserve, unauthenticated),
        ("no token", Release, unauthenticated),
        ("no token", UpsertCatalog, unauthenticated),
        ("forged token", GetStock, unauthenticated),
        ("forged token", Reserve, unauthenticated),
        ("viewer", GetStock, ok),
        ("viewer", Reserve, denied),
        ("viewer", Release, denied),
        ("viewer", UpsertCatalog, denied),
        ("viewer", AdjustStock, denied),
        ("agent", GetStock, ok),
        ("agent", Reserve, ok),
        ("agent", Release, ok),
        ("agent", UpsertCatalog, denied),
        ("agent", AdjustStock, denied),
        ("agent", UpdateSettings, denied),
        ("manager", Reserve, ok),
        ("manager", UpsertCatalog, ok),
        ("manager", AdjustStock, ok),
        ("manager", UpdateSettings, denied),
        ("admin", UpsertCatalog, ok),
        ("admin", UpdateSettings, ok),
        ("service", Reserve, ok),
        ("service", Release, ok),
        ("service", GetStock, ok),
        ("operator", GetStock, denied),
        ("operator", Reserve, denied),
    ];
    for (n, (who, operation, expected)) in table.iter().enumerate() {
        let caller = &callers.iter().find(|(name, _)| name == who).expect("known caller").1;
        let outcome = attempt(&app, &tenant, caller, *operation, n).await;
        assert_eq!(&outcome, expected, "{who} {operation:?}");
    }

    // What was denied moved nothing: on hand has the manager's one adjustment; reserved holds the
    // agent's, manager's and service's reserves plus the two set-ups whose release was refused.
    let level = app.manager(&tenant).level("A").await;
    assert_eq!((level.on_hand, level.reserved), (1001, 5));
}
