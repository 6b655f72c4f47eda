//! Approval: exactly one order, even under 50 concurrent approvals; shortages and unmatched items
//! refused with FAILED_PRECONDITION and the draft back in review; stock never left held.

use proto::draft::v1 as pb;
use testkit::Role;
use tonic::Code;

use crate::helpers::{authorized, spawn_system, spawn_system_configured};

#[tokio::test]
async fn approving_reserves_the_stock_and_creates_the_order_with_the_reviewed_prices() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 2), ("CHAIN-S", 1)]).await;
    assert_eq!(draft.status, pb::DraftStatus::PendingReview as i32);
    assert_eq!(draft.total.as_ref().map(|m| m.amount_minor), Some(2 * 1299 + 3000));

    let approved = system.approve(&draft.id).await.expect("approved");
    assert!(approved.order_code.starts_with("ORD-"), "{}", approved.order_code);
    let after = system.get_draft(&draft.id).await;
    assert_eq!(after.status, pb::DraftStatus::Approved as i32);
    assert_eq!(after.order_id, approved.order_id);

    let orders = system.list_orders().await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].id, approved.order_id);
    assert_eq!(orders[0].total.as_ref().map(|m| m.amount_minor), Some(2 * 1299 + 3000));
    assert_eq!(orders[0].reservation_reference, format!("draft:{}:v{}", draft.id, draft.version));
    assert_eq!(system.stock("HOOP-G-7").await.reserved, 2);
    assert_eq!(system.stock("CHAIN-S").await.reserved, 1);

    let again = system.approve(&draft.id).await.expect("a repeated approve answers with the order");
    assert_eq!(again.order_id, approved.order_id);

    // One `draft.approved`, written with the approval (the outbox), naming the order.
    let events = system.approved_events(&draft.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["order_id"], approved.order_id.as_str());
    assert_eq!(events[0]["data"]["order_code"], approved.order_code.as_str());
}

#[tokio::test]
async fn fifty_concurrent_approvals_make_one_order_and_every_caller_gets_it() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-8", 3)]).await;
    let calls = (0..50).map(|_| system.approve(&draft.id));
    let results = futures::future::join_all(calls).await;
    let order_ids: std::collections::HashSet<String> =
        results.into_iter().map(|r| r.expect("every caller gets the order").order_id).collect();
    assert_eq!(order_ids.len(), 1, "{order_ids:?}");
    assert_eq!(system.list_orders().await.len(), 1);
    assert_eq!(system.stock("HOOP-G-8").await.reserved, 3, "reserved once");
}

#[tokio::test]
async fn a_shortage_refuses_the_approval_names_the_items_and_returns_the_draft_to_review() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("BRACE-B", 6), ("CHAIN-S", 1)]).await;
    let err = system.approve(&draft.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("BRACE-B"), "{}", err.message());
    assert_eq!(system.get_draft(&draft.id).await.status, pb::DraftStatus::PendingReview as i32);
    assert_eq!(system.stock("CHAIN-S").await.reserved, 0, "all or nothing");
    assert!(system.list_orders().await.is_empty());

    // Edited down to what is in stock, it approves (a new version: a new reservation).
    let edited = system
        .drafts()
        .await
        .update_draft(authorized(
            pb::UpdateDraftRequest {
                id: draft.id.clone(),
                expected_version: draft.version,
                items: vec![pb::ItemInput { sku: "BRACE-B".into(), quantity: 5, text: String::new() }],
                set_items: true,
                ..Default::default()
            },
            &system.token(Role::Agent),
        ))
        .await
        .expect("edit")
        .into_inner();
    let approved = system.approve(&edited.id).await.expect("approved after the edit");
    assert!(!approved.order_id.is_empty());
    assert_eq!(system.stock("BRACE-B").await.available, 0);
}

#[tokio::test]
async fn a_draft_with_unmatched_items_cannot_be_approved() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let request = pb::CreateDraftRequest {
        customer: Some(pb::Customer { name: "Bo".into(), ..Default::default() }),
        text: "2 gold hoops size 7 and 3 purple elephants".into(),
        ..Default::default()
    };
    let draft = system
        .drafts()
        .await
        .create_draft(authorized(request, &system.token(Role::Agent)))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(draft.items.len(), 2);
    assert_eq!(draft.items[0].sku, "HOOP-G-7");
    assert_eq!(draft.items[1].sku, "", "unmatched");
    assert_eq!(draft.blockers.len(), 1);
    let err = system.approve(&draft.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("not matched"), "{}", err.message());
}

#[tokio::test]
async fn rejected_and_approved_drafts_are_final() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let mut client = system.drafts().await;
    let agent = system.token(Role::Agent);
    client
        .reject_draft(authorized(
            pb::RejectDraftRequest { id: draft.id.clone(), reason: "customer changed mind".into() },
            &agent,
        ))
        .await
        .expect("reject");
    assert_eq!(system.approve(&draft.id).await.unwrap_err().code(), Code::FailedPrecondition);
    let edit = client
        .update_draft(authorized(
            pb::UpdateDraftRequest { id: draft.id.clone(), expected_version: draft.version + 1, ..Default::default() },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(edit.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn edits_recompute_totals_keep_tax_and_shipping_and_refuse_stale_versions() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let mut client = system.drafts().await;
    let agent = system.token(Role::Agent);
    let with_charges = client
        .update_draft(authorized(
            pb::UpdateDraftRequest {
                id: draft.id.clone(),
                expected_version: draft.version,
                tax: Some(crate::helpers::usd(100)),
                shipping: Some(crate::helpers::usd(500)),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("charges")
        .into_inner();
    assert_eq!(with_charges.total.as_ref().map(|m| m.amount_minor), Some(1299 + 100 + 500));
    let more = client
        .update_draft(authorized(
            pb::UpdateDraftRequest {
                id: draft.id.clone(),
                expected_version: with_charges.version,
                items: vec![pb::ItemInput { sku: "HOOP-G-7".into(), quantity: 3, text: String::new() }],
                set_items: true,
                discount: Some(crate::helpers::usd(99)),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("items")
        .into_inner();
    assert_eq!(
        more.total.as_ref().map(|m| m.amount_minor),
        Some(3 * 1299 - 99 + 100 + 500),
        "an edit never drops tax or shipping"
    );
    let stale = client
        .update_draft(authorized(
            pb::UpdateDraftRequest { id: draft.id.clone(), expected_version: draft.version, ..Default::default() },
            &agent,
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
}

#[tokio::test]
async fn another_tenants_draft_does_not_exist_and_viewers_cannot_approve() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let mut client = system.drafts().await;
    let stranger = testkit::token(Some(uuid::Uuid::new_v4()), Role::Admin);
    let get = client.get_draft(authorized(pb::GetDraftRequest { id: draft.id.clone() }, &stranger)).await.unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let approve = client
        .approve_draft(authorized(pb::ApproveDraftRequest { id: draft.id.clone() }, &stranger))
        .await
        .unwrap_err();
    assert_eq!(approve.code(), Code::NotFound);
    // Nothing was taken either: the lease is written by the statement that finds the draft, and
    // only for the caller's tenant.
    let pool = system.env.db.admin().await.expect("admin");
    let (status, lease_owner, attempts): (String, Option<String>, i32) =
        sqlx::query_as("SELECT status, lease_owner, approval_attempts FROM draft.drafts WHERE id = $1")
            .bind(draft.id.parse::<uuid::Uuid>().expect("id"))
            .fetch_one(&pool)
            .await
            .expect("draft row");
    assert_eq!((status.as_str(), lease_owner, attempts), ("pending_review", None, 0));
    let listed =
        client.list_drafts(authorized(pb::ListDraftsRequest::default(), &stranger)).await.expect("list").into_inner();
    assert!(listed.drafts.is_empty());
    let viewer = system.token(Role::Viewer);
    let denied =
        client.approve_draft(authorized(pb::ApproveDraftRequest { id: draft.id.clone() }, &viewer)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let missing =
        client.approve_draft(tonic::Request::new(pb::ApproveDraftRequest { id: draft.id })).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn expiry_runs_by_itself_and_never_takes_a_draft_being_approved() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let due = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let approving = system.create_draft(&[("CHAIN-S", 1)]).await;
    let pool = system.env.db.admin().await.expect("admin");
    sqlx::query("UPDATE draft.drafts SET expires_at = now() - interval '1 second' WHERE id = ANY($1)")
        .bind(vec![due.id.parse::<uuid::Uuid>().expect("id"), approving.id.parse::<uuid::Uuid>().expect("id")])
        .execute(&pool)
        .await
        .expect("age");
    // As if an approver had just taken it.
    sqlx::query("UPDATE draft.drafts SET status = 'approving', lease_owner = 'someone', lease_until = now() + interval '1 hour' WHERE id = $1")
        .bind(approving.id.parse::<uuid::Uuid>().expect("id"))
        .execute(&pool)
        .await
        .expect("approving");
    testkit::eventually("the due draft expired", crate::helpers::WAIT, || async {
        system.get_draft(&due.id).await.status == pb::DraftStatus::Expired as i32
    })
    .await;
    assert_eq!(system.get_draft(&approving.id).await.status, pb::DraftStatus::Approving as i32);
    assert_eq!(system.approve(&due.id).await.unwrap_err().code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn concurrent_approvals_of_different_drafts_share_commits_yet_each_gets_its_own_outcome() {
    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let agent = system.token(Role::Agent);
    let mut client = system.drafts().await;
    // Distinct customers, so each creation opens a draft of its own instead of adding to one.
    let mut good = Vec::new();
    for i in 0..12 {
        let request = pb::CreateDraftRequest {
            customer: Some(pb::Customer {
                name: format!("Customer {i}"),
                phone_e164: format!("+23480100000{i:02}"),
                ..Default::default()
            }),
            items: vec![pb::ItemInput { sku: "HOOP-G-8".into(), quantity: 1, text: String::new() }],
            ..Default::default()
        };
        good.push(client.create_draft(authorized(request, &agent)).await.expect("create").into_inner());
    }
    let unmatched = pb::CreateDraftRequest {
        customer: Some(pb::Customer { name: "Bo".into(), ..Default::default() }),
        text: "2 gold hoops size 7 and 3 purple elephants".into(),
        ..Default::default()
    };
    let unmatched = client.create_draft(authorized(unmatched, &agent)).await.expect("create").into_inner();
    let rejected = system.create_draft(&[("HOOP-G-7", 1)]).await;
    client
        .reject_draft(authorized(pb::RejectDraftRequest { id: rejected.id.clone(), reason: "no".into() }, &agent))
        .await
        .expect("reject");

    // Everyone at once, the first draft three times over.
    let mut ids: Vec<String> = good.iter().map(|d| d.id.clone()).collect();
    ids.extend([unmatched.id.clone(), rejected.id.clone(), good[0].id.clone(), good[0].id.clone()]);
    let results = futures::future::join_all(ids.iter().map(|id| system.approve(id))).await;

    let mut order_ids = std::collections::HashSet::new();
    for (draft, result) in good.iter().zip(&results) {
        let approved = result.as_ref().expect("a matched pending draft is approved");
        order_ids.insert(approved.order_id.clone());
        // The draft in the answer is the one stored, though it was built without reading it back.
        let answered = approved.draft.clone().expect("draft in the answer");
        assert_eq!(answered, system.get_draft(&draft.id).await, "{}", draft.id);
        assert_eq!(answered.status, pb::DraftStatus::Approved as i32);
        assert_eq!(answered.order_code, approved.order_code);
    }
    assert_eq!(order_ids.len(), 12, "one order per draft");
    assert_eq!(results[12].as_ref().unwrap_err().code(), Code::FailedPrecondition, "unmatched items");
    assert_eq!(results[13].as_ref().unwrap_err().code(), Code::FailedPrecondition, "rejected is final");
    for repeat in &results[14..] {
        assert_eq!(
            repeat.as_ref().expect("a repeated approval gets the order").order_id,
            results[0].as_ref().unwrap().order_id
        );
    }
    assert_eq!(system.list_orders().await.len(), 12);
    assert_eq!(system.stock("HOOP-G-8").await.reserved, 12, "each draft reserved once");
    assert_eq!(system.stock("HOOP-G-7").await.reserved, 0, "the rejected draft holds nothing");
    assert_eq!(system.get_draft(&unmatched.id).await.status, pb::DraftStatus::PendingReview as i32);
}

#[tokio::test]
async fn a_replica_that_lost_the_lease_neither_finishes_the_draft_nor_writes_its_event() {
    use draft::outbound::approvals::{self, Finish};

    let system = spawn_system().await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let draft_id: uuid::Uuid = draft.id.parse().expect("uuid");
    let admin = system.env.db.admin().await.expect("admin");
    // Another replica's sweeper holds the lease now.
    sqlx::query("UPDATE draft.drafts SET status = 'approving', lease_owner = 'the-sweeper', lease_until = now() + interval '1 minute' WHERE id = $1")
        .bind(draft_id)
        .execute(&admin)
        .await
        .expect("lease");
    let finish = |owner: &'static str| {
        let (admin, tenant) = (admin.clone(), system.tenant);
        async move {
            let envelope = bus::Envelope::new(
                tenant,
                format!("draft:{draft_id}"),
                events::draft::DraftApproved {
                    draft_id: draft_id.to_string(),
                    order_id: uuid::Uuid::nil().to_string(),
                    order_code: "ORD-000042".into(),
                },
                None,
            );
            let namespace = bus::Namespace::new("orderflow").expect("namespace");
            let event = bus::outbox::OutboxRow::for_event(&namespace, envelope).expect("row");
            let mut tx = admin.begin().await.expect("begin");
            sqlx::query("SET LOCAL search_path = draft").execute(&mut *tx).await.expect("schema");
            let finishes = [Finish { id: draft_id, order_id: uuid::Uuid::nil(), order_code: "ORD-000042", event }];
            let finished = approvals::finish_many(&mut tx, &finishes, owner).await.expect("finish");
            tx.commit().await.expect("commit");
            finished
        }
    };

    let stale = finish("the-first-replica").await;
    assert!(stale.is_empty(), "the stale owner finished nothing");
    assert_eq!(system.get_draft(&draft.id).await.status, pb::DraftStatus::Approving as i32);
    assert!(system.approved_events(&draft.id).await.is_empty(), "and wrote no event");

    let owner = finish("the-sweeper").await;
    assert!(owner.contains_key(&draft_id), "the lease holder finished it");
    assert_eq!(system.get_draft(&draft.id).await.status, pb::DraftStatus::Approved as i32);
    assert_eq!(system.approved_events(&draft.id).await.len(), 1);
}

#[tokio::test]
async fn an_edit_committed_while_the_approval_waits_for_the_draft_is_what_gets_ordered() {
    // A lease far longer than the approval may wait: the sweeper cannot rescue an approval that
    // its own caller failed to take, so only the caller's path can pass.
    let system =
        spawn_system_configured(false, |config| config.approval_lease = std::time::Duration::from_secs(600)).await;
    system.seed_default_catalog().await;
    let draft = system.create_draft(&[("HOOP-G-7", 1)]).await;
    let id: uuid::Uuid = draft.id.parse().expect("uuid");
    let admin = system.env.db.admin().await.expect("admin");
    let watcher = system.env.db.admin().await.expect("a second admin pool, to watch for the wait");

    // An edit in flight, written as UpdateDraft writes one (new items, the version bumped), and
    // not committed yet: the approval's lock on the draft waits for it.
    let mut edit = admin.begin().await.expect("begin");
    sqlx::query("UPDATE draft.drafts SET version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *edit)
        .await
        .expect("bump version");
    sqlx::query("UPDATE draft.draft_items SET quantity = 3 WHERE draft_id = $1")
        .bind(id)
        .execute(&mut *edit)
        .await
        .expect("edit items");
    let approval = system.approve(&draft.id);
    let commit_once_waited_on = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&watcher)
            .await
            .expect("waiting backends");
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        edit.commit().await.expect("commit the edit");
    };
    let (approved, ()) = tokio::join!(approval, commit_once_waited_on);
    let approved = approved.expect("approved");

    // What was ordered and held is the edited draft, not the one from before the wait.
    let order = system
        .orders()
        .await
        .get_order(authorized(
            proto::order::v1::GetOrderRequest { id: approved.order_id.clone() },
            &system.token(Role::Viewer),
        ))
        .await
        .expect("the order")
        .into_inner();
    assert_eq!(order.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect::<Vec<_>>(), [("HOOP-G-7", 3)]);
    assert_eq!(order.total.as_ref().map(|m| m.amount_minor), Some(3 * 1299));
    assert_eq!(order.reservation_reference, format!("draft:{}:v{}", draft.id, draft.version + 1));
    assert_eq!(system.stock("HOOP-G-7").await.reserved, 3);
}

#[tokio::test]
async fn drafts_and_their_items_keep_autoanalyze_small_on_every_column() {
    // Items are read only by their draft, and drafts through tenant-first or partial indexes: a
    // small sample does (migrations `20261123000001_statistics.sql`, `20261123000002_draft_statistics.sql`).
    let system = spawn_system().await;
    let admin = system.env.db.admin().await.expect("admin");
    testkit::assert_small_statistics(&admin, &["draft.drafts", "draft.draft_items"]).await;
}
