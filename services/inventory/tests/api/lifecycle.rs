//! No reservation outlives what it was made for: each way a draft or an order can end brings
//! `reserved` back to what it was.

use testkit::Role;

use crate::helpers::{Tenant, TestApp, order_cancelled, order_created, order_status_changed, spawn_app};

/// One thing that happens to a draft or an order. `&str`s are reference versions ("v1", "v2").
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The draft service reserves on approval.
    Approve(&'static str),
    /// The draft service releases (rejection, failed approval, an edit).
    ReleaseViaApi(&'static str),
    CommitViaApi(&'static str),
    RestockViaApi(&'static str),
    /// `order.created`; `held`: the reservation exists already (a draft's approval).
    OrderCreated {
        version: &'static str,
        held: bool,
    },
    OrderCancelled(&'static str),
    OrderStatus {
        version: &'static str,
        to: &'static str,
    },
}

struct Case {
    name: &'static str,
    /// Each step and how many units it leaves reserved above the baseline.
    steps: &'static [(Step, i64)],
    /// on_hand at the end relative to the baseline (shipped and not returned: down).
    on_hand_change: i64,
}

const UNITS: i64 = 2;
const SKU: &str = "LIFE-1";

const CASES: &[Case] = &[
    Case {
        name: "draft approved, then rejected",
        steps: &[(Step::Approve("v1"), UNITS), (Step::ReleaseViaApi("v1"), 0)],
        on_hand_change: 0,
    },
    Case {
        name: "draft approved, edited and approved again, then rejected",
        steps: &[
            (Step::Approve("v1"), UNITS),
            (Step::ReleaseViaApi("v1"), 0),
            (Step::Approve("v2"), UNITS),
            (Step::ReleaseViaApi("v2"), 0),
        ],
        on_hand_change: 0,
    },
    Case {
        name: "committed then restocked via the API",
        steps: &[(Step::Approve("v1"), UNITS), (Step::CommitViaApi("v1"), 0), (Step::RestockViaApi("v1"), 0)],
        on_hand_change: 0,
    },
    Case {
        name: "draft order cancelled",
        steps: &[
            (Step::Approve("v1"), UNITS),
            (Step::OrderCreated { version: "v1", held: true }, UNITS),
            (Step::OrderCancelled("v1"), 0),
        ],
        on_hand_change: 0,
    },
    Case {
        name: "draft order shipped",
        steps: &[
            (Step::Approve("v1"), UNITS),
            (Step::OrderCreated { version: "v1", held: true }, UNITS),
            (Step::OrderStatus { version: "v1", to: "shipped" }, 0),
        ],
        on_hand_change: -UNITS,
    },
    Case {
        name: "TikTok Shop order created, then cancelled",
        steps: &[(Step::OrderCreated { version: "v1", held: false }, UNITS), (Step::OrderCancelled("v1"), 0)],
        on_hand_change: 0,
    },
    Case {
        name: "TikTok Shop order shipped, then returned",
        steps: &[
            (Step::OrderCreated { version: "v1", held: false }, UNITS),
            (Step::OrderStatus { version: "v1", to: "packed" }, UNITS),
            (Step::OrderStatus { version: "v1", to: "shipped" }, 0),
            (Step::OrderStatus { version: "v1", to: "returned" }, 0),
        ],
        on_hand_change: 0,
    },
];

async fn levels(app: &TestApp, tenant: &Tenant) -> (i64, i64) {
    let level = app.caller(tenant, Role::Viewer).level(SKU).await;
    (level.on_hand, level.reserved)
}

#[tokio::test]
async fn every_way_a_draft_or_order_ends_returns_reserved_to_what_it_was() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.seed(&tenant, &[(SKU, 50)]).await;
    let service = app.caller(&tenant, Role::Service);
    let manager = app.manager(&tenant);
    // Another order's stock stays held throughout, so "back to what it was" is not just zero.
    service.reserve("order:standing", &[(SKU, 3)]).await.expect("standing reservation");

    for (case_index, case) in CASES.iter().enumerate() {
        let (on_hand_before, reserved_before) = levels(&app, &tenant).await;
        let order_id = format!("o{case_index}");
        let reference = |version: &str| format!("draft:{case_index}:{version}");
        for (step, reserved_above) in case.steps {
            match *step {
                Step::Approve(v) => {
                    service.reserve(&reference(v), &[(SKU, UNITS)]).await.expect("approve");
                }
                Step::ReleaseViaApi(v) => {
                    service.release(&reference(v)).await.expect("release");
                }
                Step::CommitViaApi(v) => {
                    service.commit(&reference(v)).await.expect("commit");
                }
                Step::RestockViaApi(v) => {
                    manager.restock(&reference(v)).await.expect("restock");
                }
                Step::OrderCreated { version, held } => {
                    let event = order_created(&order_id, &reference(version), held, &[(Some(SKU), UNITS)]);
                    app.publish_order_event(&tenant, &order_id, event).await;
                }
                Step::OrderCancelled(v) => {
                    app.publish_order_event(&tenant, &order_id, order_cancelled(&order_id, &reference(v))).await;
                }
                Step::OrderStatus { version, to } => {
                    let event = order_status_changed(&order_id, &reference(version), "confirmed", to);
                    app.publish_order_event(&tenant, &order_id, event).await;
                }
            }
            app.wait_order_events_handled().await;
            let (_, reserved) = levels(&app, &tenant).await;
            assert_eq!(reserved, reserved_before + reserved_above, "{}: after {step:?}", case.name);
        }
        let (on_hand, reserved) = levels(&app, &tenant).await;
        assert_eq!(reserved, reserved_before, "{}: reserved is back", case.name);
        assert_eq!(on_hand, on_hand_before + case.on_hand_change, "{}: on hand", case.name);
    }
    assert_eq!(app.held_reservations(&tenant).await, 1, "only the standing reservation is held");
    assert_eq!(app.dead_letters().await, 0);
}
