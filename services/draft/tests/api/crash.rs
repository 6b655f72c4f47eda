//! A crash at any step of an approval neither loses the approval nor creates a second order: the
//! real binary is killed between steps (fail points), restarted, and its sweeper finishes.

use proto::draft::v1 as pb;
use testkit::{Role, SpawnedService};

use crate::helpers::{System, WAIT, authorized, spawn_dependencies};

async fn start_draft(system: &System, failpoint: Option<&str>) -> SpawnedService {
    let mut extra = vec![
        ("INVENTORY_GRPC_URL", system.inventory_url.clone()),
        ("ORDER_GRPC_URL", system.order_url.clone()),
        ("DRAFT_APPROVAL_LEASE_MS", "1000".to_string()),
        ("DRAFT_SWEEP_EVERY_MS", "200".to_string()),
    ];
    if let Some(point) = failpoint {
        extra.push(("ORDERFLOW_FAILPOINTS", format!("{point}=exit")));
    }
    SpawnedService::start(env!("CARGO_BIN_EXE_draft"), "draft", &system.env, &extra).await
}

async fn crash_at(point: &str) {
    let mut system = spawn_dependencies(testkit::TestEnv::new().await).await;
    system.seed_default_catalog().await;

    let doomed = start_draft(&system, Some(point)).await;
    system.draft_url = format!("http://{}", doomed.grpc_addr);
    let draft = system.create_draft(&[("HOOP-G-7", 2)]).await;
    let interrupted = system.approve(&draft.id).await;
    assert!(interrupted.is_err(), "the process died mid-approval at {point}");
    let status = doomed.wait_exit(std::time::Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(137), "killed at the fail point {point}");

    let restarted = start_draft(&system, None).await;
    system.draft_url = format!("http://{}", restarted.grpc_addr);
    testkit::eventually(&format!("the sweeper finished the approval interrupted at {point}"), WAIT, || async {
        system.get_draft(&draft.id).await.status == pb::DraftStatus::Approved as i32
    })
    .await;
    let orders = system.list_orders().await;
    assert_eq!(orders.len(), 1, "exactly one order after a crash at {point}");
    assert_eq!(system.get_draft(&draft.id).await.order_id, orders[0].id);
    assert_eq!(system.stock("HOOP-G-7").await.reserved, 2, "reserved once");
    assert_eq!(system.approved_events(&draft.id).await.len(), 1, "one draft.approved after a crash at {point}");
    let again = system.approve(&draft.id).await.expect("approve answers with the order");
    assert_eq!(again.order_id, orders[0].id);
    let _ = authorized((), &system.token(Role::Viewer));
}

#[tokio::test]
async fn a_crash_after_the_reservation_is_finished_by_the_sweeper_with_one_order() {
    crash_at("draft.approve.after_reserve").await;
}

#[tokio::test]
async fn a_crash_after_the_order_was_created_is_finished_without_a_second_order() {
    crash_at("draft.approve.after_create_order").await;
}
