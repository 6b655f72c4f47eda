//! ListOrders and OrderSummary: keyset pagination that walks every order exactly once in every
//! sort (also while orders are being added), the filters, and summary figures that agree with them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use order::domain::lifecycle::Status;
use prost_types::Timestamp;
use testkit::Role;

use crate::helpers::{Caller, Limited, Tenant, TestApp, expect_code, money, pb, pb_status, spawn_app};

const SORTS: [pb::SortBy; 4] =
    [pb::SortBy::CreatedDesc, pb::SortBy::CreatedAsc, pb::SortBy::TotalDesc, pb::SortBy::TotalAsc];

/// Creates `count` orders concurrently, numbered from `first`, with totals that repeat (ties).
async fn create_many(app: &Arc<TestApp>, tenant: Tenant, first: usize, count: usize) -> Vec<String> {
    let mut creates = Limited::new();
    for n in first..first + count {
        let app = app.clone();
        creates.spawn(async move {
            let unit = 100 * (n as i64 % 7 + 1);
            app.create_order(&tenant, &format!("draft-{n}"), &[("SKU-1", unit, 1)]).await.id
        });
    }
    creates.results().await
}

fn sort_key(order: &pb::Order, sort: pb::SortBy) -> (i64, i64) {
    match sort {
        pb::SortBy::TotalDesc | pb::SortBy::TotalAsc => (order.total.as_ref().expect("total").amount_minor, 0),
        _ => {
            let at = order.created_at.expect("created_at");
            (at.seconds, i64::from(at.nanos))
        }
    }
}

fn in_sort_order(orders: &[pb::Order], sort: pb::SortBy) -> bool {
    orders.windows(2).all(|pair| {
        let (a, b) = (sort_key(&pair[0], sort), sort_key(&pair[1], sort));
        match sort {
            pb::SortBy::CreatedAsc | pb::SortBy::TotalAsc => a <= b,
            _ => a >= b,
        }
    })
}

async fn page(caller: &Caller, sort: pb::SortBy, page_size: i32, page_token: String) -> pb::ListOrdersResponse {
    caller
        .list(pb::ListOrdersRequest { filter: None, sort: sort as i32, page_size, page_token })
        .await
        .expect("list orders")
}

#[tokio::test]
async fn pagination_walks_every_order_exactly_once_in_each_sort() {
    let app = Arc::new(spawn_app().await);
    let tenant = Tenant::new();
    let created: HashSet<String> = create_many(&app, tenant, 1, 40).await.into_iter().collect();
    let viewer = app.caller(&tenant, Role::Viewer);
    for sort in SORTS {
        let mut pages = Vec::new();
        let mut token = String::new();
        loop {
            let page = page(&viewer, sort, 7, token).await;
            pages.push(page.orders);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [7, 7, 7, 7, 7, 5], "{sort:?}");
        let walked: Vec<pb::Order> = pages.into_iter().flatten().collect();
        let ids: Vec<&String> = walked.iter().map(|o| &o.id).collect();
        let unique: HashSet<String> = ids.iter().map(|id| id.to_string()).collect();
        assert_eq!(unique.len(), ids.len(), "{sort:?} repeated an order");
        assert_eq!(unique, created, "{sort:?} skipped an order");
        assert!(in_sort_order(&walked, sort), "{sort:?} out of order");
    }
}

#[tokio::test]
async fn pagination_under_concurrent_inserts_neither_skips_nor_repeats() {
    let app = Arc::new(spawn_app().await);
    for sort in SORTS {
        let tenant = Tenant::new();
        let existing: HashSet<String> = create_many(&app, tenant, 1, 20).await.into_iter().collect();
        let viewer = app.caller(&tenant, Role::Viewer);
        let mut seen: Vec<String> = Vec::new();
        let mut token = String::new();
        let mut next_draft = 100;
        loop {
            // New orders arrive while the seller pages, with totals equal to, below and above
            // the ones already listed.
            let (page, _) = tokio::join!(page(&viewer, sort, 7, token), async {
                for unit in [1, 300, 1_000_000] {
                    next_draft += 1;
                    app.create_order(&tenant, &format!("draft-{next_draft}"), &[("SKU-1", unit, 1)]).await;
                }
            });
            seen.extend(page.orders.into_iter().map(|o| o.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort:?} repeated an order");
        let missed: Vec<&String> = existing.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missed.is_empty(), "{sort:?} skipped orders that existed at the start: {missed:?}");
    }
}

#[tokio::test]
async fn a_bad_or_foreign_page_token_or_an_overlong_search_is_an_invalid_argument() {
    let app = Arc::new(spawn_app().await);
    let tenant = Tenant::new();
    create_many(&app, tenant, 1, 3).await;
    let viewer = app.caller(&tenant, Role::Viewer);
    let by_created = page(&viewer, pb::SortBy::CreatedDesc, 1, String::new()).await.next_page_token;
    assert!(!by_created.is_empty());
    expect_code(
        viewer
            .list(pb::ListOrdersRequest {
                sort: pb::SortBy::TotalAsc as i32,
                page_token: by_created,
                ..Default::default()
            })
            .await,
        tonic::Code::InvalidArgument,
        "a created-time cursor with a total sort",
    );
    expect_code(
        viewer.list(pb::ListOrdersRequest { page_token: "not-a-token".into(), ..Default::default() }).await,
        tonic::Code::InvalidArgument,
        "garbage token",
    );
    let long = pb::OrderFilter { search: "a".repeat(201), ..Default::default() };
    expect_code(viewer.summary(long).await, tonic::Code::InvalidArgument, "a search of 201 characters");
}

/// One order of the filter fixture: customer, currency, unit price × quantity, and what happens
/// to it after creation.
struct Spec {
    name: &'static str,
    phone: &'static str,
    currency: &'static str,
    unit: i64,
    quantity: i64,
    paid: i64,
    refunded: i64,
    /// Moves after paying (a manager's UpdateOrderStatus / CancelOrder).
    moves: &'static [Status],
}

/// Row n becomes ORD-00000n.
#[rustfmt::skip]
const SPECS: [Spec; 9] = [
    //   customer         phone             cur.   unit   n  paid   refund moves after paying
    spec("Ada Obi",       "+2348012345678", "USD", 1000,  1, 0,     0,     &[]),
    spec("Bola Ade",      "+2348098765432", "USD", 2000,  1, 2000,  0,     &[]),
    spec("Chidi Eze",     "",               "USD", 1500,  2, 3000,  0,     &[Status::Processing]),
    spec("ADAEZE Nwosu",  "+447700900123",  "EUR", 800,   1, 0,     0,     &[Status::Cancelled]),
    spec("Emeka Ada",     "+2348011112222", "EUR", 1200,  3, 3600,  0,     &[]),
    spec("Funke Bello",   "",               "USD", 500,   1, 500,   0,     &[Status::Processing, Status::Shipped]),
    spec("Gbenga Ojo",    "+2348033334444", "USD", 700,   1, 300,   0,     &[]),
    spec("Halima Sule",   "",               "NGN", 50000, 1, 50000, 50000, &[Status::Cancelled]),
    spec("Ifeoma Okafor", "+2348055556666", "USD", 900,   1, 900,   100,   &[]),
];

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    phone: &'static str,
    currency: &'static str,
    unit: i64,
    quantity: i64,
    paid: i64,
    refunded: i64,
    moves: &'static [Status],
) -> Spec {
    Spec { name, phone, currency, unit, quantity, paid, refunded, moves }
}

fn at(rfc3339: &str) -> Timestamp {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).expect("date");
    Timestamp { seconds: at.unix_timestamp(), nanos: 0 }
}

/// Creates the fixture in order (so order `n` is `ORD-00000n`); returns the orders as stored.
async fn create_fixture(app: &TestApp, tenant: &Tenant) -> Vec<pb::Order> {
    let manager = app.manager(tenant);
    let mut ids = Vec::new();
    for (index, spec) in SPECS.iter().enumerate() {
        let request = pb::CreateOrderRequest {
            idempotency_key: format!("draft-{}", index + 1),
            items: vec![pb::OrderItem {
                sku: "SKU-1".into(),
                name: "Item".into(),
                unit_price: Some(money(spec.unit, spec.currency)),
                quantity: spec.quantity,
                line_total: None,
            }],
            customer: Some(pb::Customer {
                name: spec.name.into(),
                phone_e164: spec.phone.into(),
                ..Default::default()
            }),
            currency: spec.currency.into(),
            ..Default::default()
        };
        let order = app.service(tenant).create(request).await.expect("create");
        assert_eq!(order.code, format!("ORD-{:06}", index + 1));
        if spec.paid > 0 {
            manager.pay(&order.id, money(spec.paid, spec.currency)).await.expect("pay");
        }
        for step in spec.moves {
            manager.move_to(&order.id, *step).await.expect("move");
        }
        if spec.refunded > 0 {
            manager.refund(&order.id, money(spec.refunded, spec.currency)).await.expect("refund");
        }
        ids.push(order.id);
    }
    // Orders 2-4 from January 2025, order 5 from the first instant of February; the rest today.
    app.set_created_at(&[&ids[1], &ids[2], &ids[3]], time::macros::datetime!(2025-01-10 12:00 UTC)).await;
    app.set_created_at(&[&ids[4]], time::macros::datetime!(2025-02-01 00:00 UTC)).await;
    let mut stored = Vec::new();
    for id in ids {
        stored.push(manager.get(&id).await.expect("get"));
    }
    stored
}

fn statuses(list: &[Status]) -> Vec<i32> {
    list.iter().map(|s| pb_status(*s) as i32).collect()
}

fn payments(list: &[pb::PaymentStatus]) -> Vec<i32> {
    list.iter().map(|s| *s as i32).collect()
}

fn search(text: &str) -> pb::OrderFilter {
    pb::OrderFilter { search: text.into(), ..Default::default() }
}

#[tokio::test]
async fn filters_narrow_the_list_and_the_summary_agrees() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let orders = create_fixture(&app, &tenant).await;
    // Another tenant's look-alike order never shows up.
    let other = Tenant::new();
    app.create_order(&other, "draft-1", &[("SKU-1", 1000, 1)]).await;

    use pb::PaymentStatus as P;
    let cases: Vec<(&str, pb::OrderFilter, Vec<usize>)> = vec![
        ("no filter", pb::OrderFilter::default(), (1..=9).collect()),
        (
            "confirmed or processing",
            pb::OrderFilter { statuses: statuses(&[Status::Confirmed, Status::Processing]), ..Default::default() },
            vec![2, 3, 5, 9],
        ),
        ("cancelled", pb::OrderFilter { statuses: statuses(&[Status::Cancelled]), ..Default::default() }, vec![4, 8]),
        ("paid", pb::OrderFilter { payment_statuses: payments(&[P::Paid]), ..Default::default() }, vec![2, 3, 5, 6]),
        (
            "refunded in part or in full",
            pb::OrderFilter { payment_statuses: payments(&[P::Refunded, P::PartiallyRefunded]), ..Default::default() },
            vec![8, 9],
        ),
        (
            "awaiting payment",
            pb::OrderFilter {
                statuses: statuses(&[Status::PendingPayment]),
                payment_statuses: payments(&[P::Pending]),
                ..Default::default()
            },
            vec![1, 7],
        ),
        (
            "January 2025",
            pb::OrderFilter {
                created_from: Some(at("2025-01-01T00:00:00Z")),
                created_to: Some(at("2025-02-01T00:00:00Z")),
                ..Default::default()
            },
            vec![2, 3, 4],
        ),
        (
            "February 2025 (from is inclusive)",
            pb::OrderFilter {
                created_from: Some(at("2025-02-01T00:00:00Z")),
                created_to: Some(at("2025-03-01T00:00:00Z")),
                ..Default::default()
            },
            vec![5],
        ),
        (
            "before February 2025 (to is exclusive)",
            pb::OrderFilter { created_to: Some(at("2025-02-01T00:00:00Z")), ..Default::default() },
            vec![2, 3, 4],
        ),
        ("code", search("ORD-000003"), vec![3]),
        ("code in lower case", search("ord-000007"), vec![7]),
        ("name, any case", search("ada"), vec![1, 4, 5]),
        ("name with spaces around", search("  ADA  "), vec![1, 4, 5]),
        ("surname", search("Bello"), vec![6]),
        ("whole phone", search("+2348098765432"), vec![2]),
        ("part of a phone", search("8098765"), vec![2]),
        ("nobody", search("nobody"), vec![]),
        ("a LIKE wildcard is literal", search("%"), vec![]),
        ("a LIKE single-character wildcard is literal", search("_"), vec![]),
        ("drafts", pb::OrderFilter { source: pb::OrderSource::Draft as i32, ..Default::default() }, (1..=9).collect()),
        ("TikTok Shop", pb::OrderFilter { source: pb::OrderSource::TiktokShop as i32, ..Default::default() }, vec![]),
        (
            "cancelled and named Ada",
            pb::OrderFilter { statuses: statuses(&[Status::Cancelled]), search: "ada".into(), ..Default::default() },
            vec![4],
        ),
    ];

    let viewer = app.caller(&tenant, Role::Viewer);
    for (what, filter, expected) in cases {
        let expected: Vec<&pb::Order> = expected.iter().map(|n| &orders[n - 1]).collect();
        let mut listed: Vec<String> =
            viewer.list_all(filter.clone(), pb::SortBy::CreatedDesc, 2).await.into_iter().map(|o| o.code).collect();
        listed.sort();
        let mut codes: Vec<String> = expected.iter().map(|o| o.code.clone()).collect();
        codes.sort();
        assert_eq!(listed, codes, "ListOrders: {what}");

        let summary = viewer.summary(filter).await.expect("summary");
        assert_eq!(summary.count, expected.len() as i64, "count: {what}");
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        let mut by_status: BTreeMap<i32, i64> = BTreeMap::new();
        for order in &expected {
            let total = order.total.as_ref().expect("total");
            *totals.entry(total.currency.clone()).or_default() += total.amount_minor;
            *by_status.entry(order.status).or_default() += 1;
        }
        let got_totals: BTreeMap<String, i64> =
            summary.totals.iter().map(|m| (m.currency.clone(), m.amount_minor)).collect();
        assert_eq!(summary.totals.len(), got_totals.len(), "one total per currency: {what}");
        assert_eq!(got_totals, totals, "totals: {what}");
        let got_by_status: BTreeMap<i32, i64> = summary.by_status.iter().map(|s| (s.status, s.count)).collect();
        assert_eq!(got_by_status, by_status, "per-status counts: {what}");
    }
}

#[tokio::test]
async fn the_summary_of_everything_adds_up_per_currency_and_status() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    create_fixture(&app, &tenant).await;
    let summary = app.caller(&tenant, Role::Viewer).summary(pb::OrderFilter::default()).await.expect("summary");
    assert_eq!(summary.count, 9);
    let totals: BTreeMap<String, i64> = summary.totals.iter().map(|m| (m.currency.clone(), m.amount_minor)).collect();
    let expected_totals: BTreeMap<String, i64> =
        [("EUR", 800 + 3600), ("NGN", 50000), ("USD", 1000 + 2000 + 3000 + 500 + 700 + 900)]
            .into_iter()
            .map(|(c, t)| (c.to_string(), t))
            .collect();
    assert_eq!(totals, expected_totals);
    let by_status: BTreeMap<i32, i64> = summary.by_status.iter().map(|s| (s.status, s.count)).collect();
    let expected_by_status: BTreeMap<i32, i64> = [
        (Status::PendingPayment, 2),
        (Status::Confirmed, 3),
        (Status::Processing, 1),
        (Status::Shipped, 1),
        (Status::Cancelled, 2),
    ]
    .into_iter()
    .map(|(s, n)| (pb_status(s) as i32, n))
    .collect();
    assert_eq!(by_status, expected_by_status);
}

#[tokio::test]
async fn the_search_index_merges_its_pending_list_in_small_pieces() {
    // With GIN's 4 MB default, the insert that finds the pending list full merges all of it
    // before it commits, and a CreateOrder batch waits for that (migration 3).
    let app = spawn_app().await;
    let capped = app
        .admin_scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'orders' AND c.relname = 'orders_search'
               AND c.reloptions @> ARRAY['gin_pending_list_limit=256']",
        )
        .await;
    assert_eq!(capped, 1);
}
