//! ReserveMany: several reservations of the caller's tenant in one call, for the draft service's
//! approvals. Each entry is handled as Reserve would handle it and answered on its own; only a
//! service may call it, and only for its token's tenant.

use testkit::Role;
use tokio::task::JoinSet;
use tonic::Code;

use crate::helpers::{ManyEntry, Tenant, assert_status, pb, spawn_app};

use pb::reserve_many_result::Outcome;

fn failure(outcome: &Outcome) -> Option<(Code, &str)> {
    match outcome {
        Outcome::Failure(f) => Some((Code::from_i32(f.code), f.message.as_str())),
        Outcome::Reservation(_) => None,
    }
}

#[tokio::test]
async fn each_entry_is_answered_on_its_own_in_order_and_a_refused_one_holds_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10), ("B", 3)]).await;
    let service = app.caller(&tenant, Role::Service);
    service.reserve("draft:before:v1", &[("A", 1)]).await.expect("an earlier reservation");

    let outcomes = service
        .reserve_many(&[
            ("alice", "draft:1:v1", &[("A", 2), ("B", 1)]),
            ("alice", "draft:2:v1", &[("A", 1), ("B", 5)]),
            ("bob", "", &[("A", 1)]),
            ("bob", "draft:3:v1", &[("A", 0)]),
            ("", "draft:before:v1", &[("A", 1)]),
            ("bob", "draft:4:v1", &[("A", 1)]),
        ])
        .await
        .expect("the call itself succeeds");

    assert_eq!(outcomes.len(), 6, "one result per entry");
    match &outcomes[0] {
        Outcome::Reservation(r) => {
            assert_eq!((r.reference.as_str(), r.status()), ("draft:1:v1", pb::ReservationStatus::Held));
        }
        other => panic!("entry 0 fits: {other:?}"),
    }
    let (code, message) = failure(&outcomes[1]).expect("entry 1 is short");
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("B (requested 5, available 2)"), "{message}");
    assert_eq!(failure(&outcomes[2]).map(|f| f.0), Some(Code::InvalidArgument), "no reference");
    assert_eq!(failure(&outcomes[3]).map(|f| f.0), Some(Code::InvalidArgument), "quantity 0");
    match &outcomes[4] {
        Outcome::Reservation(r) => assert_eq!(r.reference, "draft:before:v1", "the same reference: the same hold"),
        other => panic!("entry 4 repeats an earlier reservation: {other:?}"),
    }
    assert!(matches!(&outcomes[5], Outcome::Reservation(r) if r.reference == "draft:4:v1"));

    // A: 1 before + 2 + 1; B: 1. The short entry took nothing, the repeated one held once.
    let levels = service.stock(&["A", "B"]).await.expect("stock");
    assert_eq!(levels.iter().map(|l| (l.sku.as_str(), l.reserved)).collect::<Vec<_>>(), [("A", 4), ("B", 1)]);
    assert_status(service.get_reservation("draft:2:v1").await, Code::NotFound, &[]);
    assert_eq!(app.held_reservations(&tenant).await, 3);
    // Each entry's user is its reservation's actor, with the service that acted for them.
    assert_eq!(
        app.admin_scalar(
            "SELECT count(*) FROM inventory.stock_ledger WHERE reference = 'draft:1:v1' AND actor = 'alice via test-user'"
        )
        .await,
        2
    );
    assert_eq!(
        app.admin_scalar(
            "SELECT count(*) FROM inventory.stock_ledger WHERE reference = 'draft:4:v1' AND actor = 'bob via test-user'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn only_a_service_may_call_it_and_a_call_needs_one_to_256_entries() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;

    for role in [Role::Agent, Role::Admin] {
        let denied = app.caller(&tenant, role).reserve_many(&[("mallory", "draft:1:v1", &[("A", 1)])]).await;
        assert_status(denied, Code::PermissionDenied, &[]);
    }
    assert_status(app.anonymous().reserve_many(&[("", "draft:1:v1", &[("A", 1)])]).await, Code::Unauthenticated, &[]);

    let service = app.caller(&tenant, Role::Service);
    assert_status(service.reserve_many(&[]).await, Code::InvalidArgument, &["entries"]);
    let items: &[(&str, i64)] = &[("A", 1)];
    let references: Vec<String> = (0..257).map(|i| format!("draft:{i}:v1")).collect();
    let too_many: Vec<ManyEntry<'_>> = references.iter().map(|r| ("", r.as_str(), items)).collect();
    assert_status(service.reserve_many(&too_many).await, Code::InvalidArgument, &["256"]);
    let without_reserve = pb::ReserveManyRequest { entries: vec![pb::ReserveManyEntry::default()] };
    let outcomes = service.reserve_many_raw(without_reserve).await.expect("answered per entry");
    assert_eq!(failure(&outcomes[0]).map(|f| f.0), Some(Code::InvalidArgument));

    assert_eq!(service.level("A").await.reserved, 0, "nothing refused was held");
}

#[tokio::test]
async fn a_tenants_service_token_reserves_only_that_tenants_stock() {
    let app = spawn_app().await;
    let (ours, theirs) = (Tenant::new(), Tenant::new());
    app.seed(&ours, &[("A", 5)]).await;
    app.caller(&ours, Role::Service).reserve("draft:1:v1", &[("A", 2)]).await.expect("ours");

    // Their token, our SKU and our reference: their catalog has no A, and the reference is theirs.
    let outcomes = app
        .caller(&theirs, Role::Service)
        .reserve_many(&[("", "draft:1:v1", &[("A", 1)])])
        .await
        .expect("answered per entry");
    let (code, message) = failure(&outcomes[0]).expect("refused");
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("A (requested 1, available 0)"), "{message}");

    let level = app.caller(&ours, Role::Viewer).level("A").await;
    assert_eq!((level.on_hand, level.reserved), (5, 2), "our stock untouched");
    assert_eq!(app.held_reservations(&theirs).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_on_one_hot_sku_never_oversell() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("HOT", 25)]).await;
    let service = app.caller(&tenant, Role::Service);

    let mut calls = JoinSet::new();
    for batch in 0..10 {
        let service = service.clone();
        calls.spawn(async move {
            let references: Vec<String> = (0..10).map(|i| format!("draft:{batch}-{i}:v1")).collect();
            let items: &[(&str, i64)] = &[("HOT", 1)];
            let entries: Vec<ManyEntry<'_>> = references.iter().map(|r| ("", r.as_str(), items)).collect();
            service.reserve_many(&entries).await.expect("the call succeeds")
        });
    }
    let (mut granted, mut short) = (0, 0);
    while let Some(joined) = calls.join_next().await {
        for outcome in joined.expect("task") {
            match failure(&outcome) {
                None => granted += 1,
                Some((Code::FailedPrecondition, _)) => short += 1,
                Some(other) => panic!("only shortages: {other:?}"),
            }
        }
    }
    assert_eq!((granted, short), (25, 75));
    let level = service.level("HOT").await;
    assert_eq!((level.on_hand, level.reserved, level.available), (25, 25, 0));
}

/// The draft service gathered the call's entries already: they are committed together as they
/// came, not queued again for the reservation committers (where, one batch holding one entry
/// here, they would take a transaction each, one after the other).
#[tokio::test]
async fn a_calls_entries_are_committed_in_one_transaction_whatever_the_queues_batch_size() {
    let app = crate::helpers::spawn_app_configured(|config| config.reserve_max_batch = 1).await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10), ("B", 10)]).await;
    let service = app.caller(&tenant, Role::Service);
    let outcomes = service
        .reserve_many(&[
            ("", "draft:1:v1", &[("A", 1)]),
            ("", "draft:2:v1", &[("B", 2)]),
            ("", "", &[("A", 1)]),
            ("", "draft:3:v1", &[("A", 1), ("B", 1)]),
        ])
        .await
        .expect("answered per entry");
    assert_eq!(outcomes.iter().filter(|o| failure(o).is_none()).count(), 3, "{outcomes:?}");
    assert_eq!(failure(&outcomes[2]).map(|f| f.0), Some(Code::InvalidArgument), "no reference");
    assert_eq!(
        app.admin_scalar("SELECT count(DISTINCT xmin::text) FROM inventory.reservations").await,
        1,
        "the three holds were written by one transaction"
    );
    // A single Reserve still goes through the queue, in a transaction of its own.
    service.reserve("draft:4:v1", &[("A", 1)]).await.expect("reserved");
    assert_eq!(app.admin_scalar("SELECT count(DISTINCT xmin::text) FROM inventory.reservations").await, 2);
}
