//! Every (from, to) pair of states, generated from the state machine and requested through the API:
//! the legal ones move the order, the illegal ones fail with FAILED_PRECONDITION naming where the
//! order is and where it may go, and leave it where it was.

use crate::helpers::{Limited, Tenant, expect_code, spawn_app, status_of};
use order::domain::lifecycle::{ALL, Status};

/// What the refusal must say: the current state and every allowed next state.
fn names_current_and_allowed(message: &str, from: Status) -> bool {
    let names_current = message.contains(&format!("order is {from}"));
    let names_allowed = if from.next().is_empty() {
        message.contains("nothing")
    } else {
        from.next().iter().all(|next| message.contains(next.as_str()))
    };
    names_current && names_allowed
}

#[tokio::test]
async fn every_transition_requested_through_the_api_is_allowed_or_refused_by_the_state_machine() {
    let app = std::sync::Arc::new(spawn_app().await);
    let tenant = Tenant::new();
    let mut cases = Limited::new();
    for from in ALL {
        for to in ALL {
            let app = app.clone();
            cases.spawn(async move {
                let order = app.order_in(&tenant, &format!("draft-{from}-{to}"), from).await;
                let manager = app.manager(&tenant);
                let result = manager.move_to(&order.id, to).await;
                let after = manager.get(&order.id).await.expect("get order");
                let legal = from.next().contains(&to);
                match (&result, legal) {
                    (Ok(moved), true) if status_of(moved) == to && status_of(&after) == to => Ok(()),
                    (Err(status), false)
                        if status.code() == tonic::Code::FailedPrecondition
                            && names_current_and_allowed(status.message(), from)
                            && status_of(&after) == from
                            && after.version == order.version =>
                    {
                        Ok(())
                    }
                    _ => Err(format!(
                        "{from} -> {to} (legal: {legal}): got {:?}, order now {}",
                        result.as_ref().map(status_of),
                        status_of(&after)
                    )),
                }
            });
        }
    }
    let verdicts = cases.results().await;
    assert_eq!(verdicts.len(), ALL.len() * ALL.len());
    let mut failures: Vec<String> = verdicts.into_iter().filter_map(Result::err).collect();
    failures.sort();
    assert!(failures.is_empty(), "transitions that broke the state machine:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_refused_transition_writes_no_history_and_publishes_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.order_in(&tenant, "draft-1", Status::Shipped).await;
    let manager = app.manager(&tenant);
    let before = manager.get(&order.id).await.expect("get");

    let refused = expect_code(
        manager.cancel(&order.id, "too late", 0).await,
        tonic::Code::FailedPrecondition,
        "cancel after shipping",
    );
    assert_eq!(refused.message(), "order is shipped; it can move to delivered");
    let refused =
        expect_code(manager.move_to(&order.id, Status::Confirmed).await, tonic::Code::FailedPrecondition, "move back");
    assert_eq!(refused.message(), "order is shipped; it can move to delivered");

    let after = manager.get(&order.id).await.expect("get");
    assert_eq!(after.history, before.history);
    assert_eq!(after.version, before.version);
    let changes = app.order_events::<events::order::OrderStatusChanged>().await;
    assert_eq!(changes.len(), 3, "pending -> confirmed -> processing -> shipped, nothing for the refusals");
    assert!(app.order_events::<events::order::OrderCancelled>().await.is_empty());
}

#[tokio::test]
async fn a_final_state_refuses_everything_and_says_it_is_final() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    for terminal in ALL.into_iter().filter(|s| s.is_terminal()) {
        let order = app.order_in(&tenant, &format!("draft-{terminal}"), terminal).await;
        let refused = expect_code(
            manager.move_to(&order.id, Status::Delivered).await,
            tonic::Code::FailedPrecondition,
            "move a final order",
        );
        assert_eq!(refused.message(), format!("order is {terminal}; it can move to nothing (final state)"));
    }
}

#[tokio::test]
async fn a_status_change_with_a_stale_expected_version_is_aborted() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let stale = order.version;
    let moved = manager.set_status(&order.id, Status::Confirmed, "", stale).await.expect("current version moves");
    assert_eq!(moved.version, stale + 1);

    expect_code(
        manager.set_status(&order.id, Status::Processing, "", stale).await,
        tonic::Code::Aborted,
        "status with a stale version",
    );
    expect_code(manager.cancel(&order.id, "changed mind", stale).await, tonic::Code::Aborted, "cancel, stale");
    let after = manager.get(&order.id).await.expect("get");
    assert_eq!(status_of(&after), Status::Confirmed);
    manager.set_status(&order.id, Status::Processing, "", moved.version).await.expect("the current version moves");
}
