//! Reserve, release, commit and restock over gRPC: no oversell under contention, all or nothing,
//! idempotent per reference, and the reference's state machine.

use testkit::Role;
use tokio::task::JoinSet;
use tonic::Code;

use crate::helpers::{PATIENCE, Tenant, assert_status, pb, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_reservations_against_ten_units_leave_exactly_ten() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("HOT-1", 10)]).await;
    let agent = app.caller(&tenant, Role::Agent);

    let mut calls = JoinSet::new();
    for i in 0..100 {
        let agent = agent.clone();
        calls.spawn(async move { agent.reserve(&format!("draft:{i}:v1"), &[("HOT-1", 1)]).await });
    }
    let (mut granted, mut refused) = (0, 0);
    while let Some(joined) = calls.join_next().await {
        match joined.expect("reserve task") {
            Ok(reservation) => {
                assert_eq!(reservation.status(), pb::ReservationStatus::Held);
                granted += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("HOT-1"), "the refusal names the SKU: {status:?}");
                refused += 1;
            }
        }
    }

    assert_eq!((granted, refused), (10, 90));
    let level = agent.level("HOT-1").await;
    assert_eq!((level.on_hand, level.reserved, level.available), (10, 10, 0));
    assert_eq!(app.held_reservations(&tenant).await, 10);
    assert_eq!(
        app.admin_scalar("SELECT coalesce(sum(quantity), 0)::bigint FROM inventory.reservation_items").await,
        10
    );
}

#[tokio::test]
async fn a_reservation_with_any_short_item_takes_nothing_and_lists_what_is_short() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10), ("B", 3)]).await;
    let agent = app.caller(&tenant, Role::Agent);

    // (items, what the refusal must list)
    type Case<'a> = (&'a [(&'a str, i64)], &'a [&'a str]);
    let table: &[Case] = &[
        (&[("A", 2), ("B", 5)], &["B (requested 5, available 3)"]),
        (&[("A", 11), ("B", 1)], &["A (requested 11, available 10)"]),
        (&[("A", 11), ("B", 4)], &["A (requested 11, available 10)", "B (requested 4, available 3)"]),
        (&[("A", 6), ("A", 5)], &["A (requested 11, available 10)"]),
        (&[("A", 2), ("NOT-IN-CATALOG", 1)], &["NOT-IN-CATALOG (requested 1, available 0)"]),
    ];
    for (i, (items, short)) in table.iter().enumerate() {
        let reference = format!("draft:{i}:v1");
        let status = assert_status(agent.reserve(&reference, items).await, Code::FailedPrecondition, short);
        assert_eq!(status.message().matches("(requested").count(), short.len(), "only the short items: {status:?}");
        assert_status(agent.get_reservation(&reference).await, Code::NotFound, &[]);
    }

    let levels = agent.stock(&["A", "B"]).await.expect("stock");
    assert_eq!(levels.iter().map(|l| (l.sku.as_str(), l.reserved)).collect::<Vec<_>>(), [("A", 0), ("B", 0)]);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.stock_ledger WHERE reason = 'reserve'").await, 0);
    // What was refused never blocked what fits.
    agent.reserve("draft:fits:v1", &[("A", 10), ("B", 3)]).await.expect("everything available");
}

#[tokio::test]
async fn reserving_the_same_reference_again_returns_the_same_reservation_and_holds_once() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10), ("B", 10)]).await;
    let agent = app.caller(&tenant, Role::Agent);

    let first = agent.reserve("draft:7:v1", &[("A", 2), ("B", 1)]).await.expect("first");
    let again = agent.reserve("draft:7:v1", &[("B", 1), ("A", 2)]).await.expect("retry, items in another order");
    assert_eq!(again.reference, first.reference);
    assert_eq!(again.status(), pb::ReservationStatus::Held);
    let mut items: Vec<(String, i64)> = again.items.iter().map(|i| (i.sku.clone(), i.quantity)).collect();
    items.sort();
    assert_eq!(items, [("A".to_string(), 2), ("B".to_string(), 1)]);
    assert_eq!(agent.level("A").await.reserved, 2);
    assert_eq!(agent.level("B").await.reserved, 1);

    for other_items in [&[("A", 3), ("B", 1)][..], &[("A", 2)], &[("A", 2), ("B", 1), ("C", 1)]] {
        assert_status(agent.reserve("draft:7:v1", other_items).await, Code::AlreadyExists, &["draft:7:v1"]);
    }
    assert_eq!(agent.level("A").await.reserved, 2);
    assert_eq!(app.held_reservations(&tenant).await, 1);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.stock_ledger WHERE reason = 'reserve'").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_reserves_of_one_new_reference_hold_the_stock_once() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 100)]).await;
    let agent = app.caller(&tenant, Role::Agent);

    // Several rounds: each is a fresh reference raced by twenty callers.
    for round in 0..5 {
        let reference = format!("draft:race-{round}:v1");
        let mut calls = JoinSet::new();
        for _ in 0..20 {
            let (agent, reference) = (agent.clone(), reference.clone());
            calls.spawn(async move { agent.reserve(&reference, &[("A", 1)]).await });
        }
        while let Some(joined) = calls.join_next().await {
            let reservation = joined.expect("task").expect("every caller gets the reservation");
            assert_eq!(reservation.reference, reference);
        }
        assert_eq!(agent.level("A").await.reserved, round + 1, "round {round}: one unit held per reference");
    }
    assert_eq!(app.held_reservations(&tenant).await, 5);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.stock_ledger WHERE reason = 'reserve'").await, 5);
    for round in 0..5 {
        agent.release(&format!("draft:race-{round}:v1")).await.expect("release");
    }
    assert_eq!(agent.level("A").await.reserved, 0, "nothing outlives its reservation");
}

/// A reservation batch reads the references' reservations after their advisory locks are held,
/// as whoever held them left them: a batch that waited while another transaction wrote the
/// same reference answers with that reservation, instead of holding the stock again or failing
/// on the duplicate. Without a fresh snapshot after the wait, it would not see that write.
#[tokio::test]
async fn a_reserve_that_waited_for_the_references_lock_sees_what_its_holder_committed() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let agent = app.caller(&tenant, Role::Agent);

    // Another writer of the same reference (as a concurrent batch would be): it holds the
    // reference's lock and writes the reservation, and commits only once the Reserve waits.
    let writer_pool = app.env.db.admin().await.expect("a connection of its own");
    let mut writer = writer_pool.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 0))")
        .bind(tenant.id)
        .bind("draft:waited:v1")
        .execute(&mut *writer)
        .await
        .expect("lock");
    sqlx::query(
        "WITH r AS (INSERT INTO inventory.reservations (tenant_id, reference, status) VALUES ($1, $2, 'held'))
         INSERT INTO inventory.reservation_items (tenant_id, reference, sku, location, quantity)
         VALUES ($1, $2, 'A', 'default', 2)",
    )
    .bind(tenant.id)
    .bind("draft:waited:v1")
    .execute(&mut *writer)
    .await
    .expect("write the reservation");
    sqlx::query("UPDATE inventory.stock_levels SET reserved = reserved + 2 WHERE tenant_id = $1 AND sku = 'A'")
        .bind(tenant.id)
        .execute(&mut *writer)
        .await
        .expect("hold");

    let reserve = tokio::spawn({
        let agent = agent.clone();
        async move { agent.reserve("draft:waited:v1", &[("A", 2)]).await }
    });
    testkit::eventually("the Reserve waits for the reference's lock", PATIENCE, || async {
        app.admin_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").await == 1
    })
    .await;
    writer.commit().await.expect("commit");

    let reservation = reserve.await.expect("task").expect("answered with the reservation written meanwhile");
    assert_eq!(reservation.reference, "draft:waited:v1");
    assert_eq!(agent.level("A").await.reserved, 2, "held once, by the writer");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM inventory.stock_ledger WHERE reason = 'reserve'").await, 0);
}

#[tokio::test]
async fn availability_is_reported_per_requested_line_without_reserving() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10), ("B", 2)]).await;
    let agent = app.caller(&tenant, Role::Agent);
    agent.reserve("draft:1:v1", &[("A", 4)]).await.expect("reserve");

    let request = pb::AvailabilityRequest {
        items: vec![
            crate::helpers::reserve_item("A", 6),
            crate::helpers::reserve_item("A", 7),
            crate::helpers::reserve_item("B", 3),
            crate::helpers::reserve_item("NOT-IN-CATALOG", 1),
        ],
    };
    let answer = agent.check_availability(request).await.expect("availability");
    let rows: Vec<(&str, i64, i64, bool)> =
        answer.items.iter().map(|a| (a.sku.as_str(), a.requested, a.available, a.sufficient)).collect();
    assert_eq!(rows, [("A", 6, 6, true), ("A", 7, 6, false), ("B", 3, 2, false), ("NOT-IN-CATALOG", 1, 0, false)]);
    assert_eq!(agent.level("A").await.reserved, 4, "checking reserves nothing");
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Reserve(&'static str, i64),
    Release(&'static str),
    Commit(&'static str),
    Restock(&'static str),
}

#[tokio::test]
async fn release_commit_and_restock_by_reference_move_stock_once_and_only_from_the_right_state() {
    use pb::ReservationStatus::{Committed, Held, Released, Restocked};
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[("A", 10)]).await;
    let manager = app.manager(&tenant);

    // (operation, outcome, A's (on_hand, reserved) afterwards)
    type Case = (Op, Result<pb::ReservationStatus, Code>, (i64, i64));
    let table: &[Case] = &[
        (Op::Reserve("r1", 3), Ok(Held), (10, 3)),
        (Op::Release("r1"), Ok(Released), (10, 0)),
        (Op::Release("r1"), Ok(Released), (10, 0)),
        // Re-approval: a released reference reserved again is held again.
        (Op::Reserve("r1", 3), Ok(Held), (10, 3)),
        (Op::Commit("r1"), Ok(Committed), (7, 0)),
        (Op::Commit("r1"), Ok(Committed), (7, 0)),
        (Op::Release("r1"), Err(Code::FailedPrecondition), (7, 0)),
        (Op::Reserve("r1", 3), Ok(Committed), (7, 0)),
        (Op::Restock("r1"), Ok(Restocked), (10, 0)),
        (Op::Restock("r1"), Ok(Restocked), (10, 0)),
        (Op::Commit("r1"), Err(Code::FailedPrecondition), (10, 0)),
        (Op::Release("r1"), Err(Code::FailedPrecondition), (10, 0)),
        (Op::Reserve("r2", 4), Ok(Held), (10, 4)),
        (Op::Restock("r2"), Err(Code::FailedPrecondition), (10, 4)),
        (Op::Release("r2"), Ok(Released), (10, 0)),
        (Op::Commit("r2"), Err(Code::FailedPrecondition), (10, 0)),
        (Op::Restock("r2"), Err(Code::FailedPrecondition), (10, 0)),
        (Op::Release("unknown"), Err(Code::NotFound), (10, 0)),
        (Op::Commit("unknown"), Err(Code::NotFound), (10, 0)),
        (Op::Restock("unknown"), Err(Code::NotFound), (10, 0)),
    ];
    for (step, (op, expected, (on_hand, reserved))) in table.iter().enumerate() {
        let outcome = match *op {
            Op::Reserve(reference, quantity) => manager.reserve(reference, &[("A", quantity)]).await,
            Op::Release(reference) => manager.release(reference).await,
            Op::Commit(reference) => manager.commit(reference).await,
            Op::Restock(reference) => manager.restock(reference).await,
        };
        let outcome = outcome.map(|r| r.status()).map_err(|s| s.code());
        assert_eq!(&outcome, expected, "step {step}: {op:?}");
        let level = manager.level("A").await;
        assert_eq!((level.on_hand, level.reserved), (*on_hand, *reserved), "step {step}: {op:?}");
    }
    assert_eq!(manager.get_reservation("r1").await.expect("r1").status(), Restocked);
    assert_eq!(manager.get_reservation("r2").await.expect("r2").status(), Released);
    assert_status(manager.get_reservation("unknown").await, Code::NotFound, &[]);
}
