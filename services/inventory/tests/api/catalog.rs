//! The catalog: bulk upsert and CSV import (every bad row with its line and reason, nothing
//! written unless asked to skip bad rows), the tenant's currency, reading it back page by page,
//! and the `inventory.catalog_changed` event.

use std::collections::BTreeSet;

use events::inventory::CatalogChanged;
use testkit::Role;
use tonic::Code;

use crate::helpers::{Tenant, TestApp, assert_status, item, money, pb, spawn_app};

async fn catalog_size(app: &TestApp, tenant: &Tenant) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inventory.catalog_items WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&app.admin)
        .await
        .expect("count catalog")
}

/// Each row error as (line, sku), with its reason checked against the expected fragment.
#[track_caller]
fn assert_row_errors(errors: &[pb::RowError], expected: &[(i32, &str, &str)]) {
    let lines: Vec<(i32, &str)> = errors.iter().map(|e| (e.line, e.sku.as_str())).collect();
    let expected_lines: Vec<(i32, &str)> = expected.iter().map(|(line, sku, _)| (*line, *sku)).collect();
    assert_eq!(lines, expected_lines, "{errors:#?}");
    for (error, (_, _, reason)) in errors.iter().zip(expected) {
        assert!(error.reason.contains(reason), "line {}: {:?} should say {reason:?}", error.line, error.reason);
    }
}

#[tokio::test]
async fn an_upsert_with_bad_rows_writes_nothing_and_reports_each_unless_told_to_skip_them() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    let rows = vec![
        item("RING-1", "Signet Ring", 2500),
        item("has space", "Bad SKU", 100),
        item("NAMELESS", "  ", 100),
        item("NEG-1", "Negative", -1),
        pb::CatalogItemInput { price: None, ..item("NO-PRICE", "No price", 0) },
        pb::CatalogItemInput { price: Some(money(100, "U$D")), ..item("BAD-CUR", "Bad currency", 0) },
        item("RING-2", "Band Ring", 1800),
        item("RING-1", "Signet Ring again", 2600),
    ];
    let expected = [
        (2, "has space", "may only hold"),
        (3, "NAMELESS", "name is empty"),
        (4, "NEG-1", "price is negative"),
        (5, "NO-PRICE", "price is missing"),
        (6, "BAD-CUR", "U$D"),
        (8, "RING-1", "twice"),
    ];

    let refused = manager.upsert(rows.clone(), false).await.expect("answered with row errors");
    assert_eq!(refused.upserted, 0);
    assert_row_errors(&refused.errors, &expected);
    assert_eq!(catalog_size(&app, &tenant).await, 0, "nothing written");
    assert_eq!(refused.catalog_version, 0, "the version did not move");

    let skipped = manager.upsert(rows, true).await.expect("good rows written");
    assert_eq!(skipped.upserted, 2);
    assert_row_errors(&skipped.errors, &expected);
    assert_eq!(catalog_size(&app, &tenant).await, 2);
    let ring = manager.get_item("RING-1").await.expect("written");
    assert_eq!(ring.name, "Signet Ring", "the first of two rows for one SKU is the one kept");
    assert_eq!(ring.price, Some(money(2500, "USD")));
    assert_status(manager.get_item("NEG-1").await, Code::NotFound, &[]);
}

/// A CSV line of the generated import: `sku,name,price,currency,attributes,active,retailer_id`.
fn csv_row(i: usize) -> String {
    format!(
        "SKU-{i:05},Charm Bracelet {i},{}.{:02},USD,size={};colour=gold,true,WA-{i:05}",
        10 + i % 90,
        i % 100,
        i % 9 + 5
    )
}

#[tokio::test]
async fn a_csv_import_of_three_thousand_rows_reports_bad_rows_by_csv_line_and_is_all_or_nothing() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    app.caller(&tenant, Role::Admin).update_settings("USD", 0).await.expect("tenant currency");
    let manager = app.manager(&tenant);

    // Row i of the data is on line i + 2: the header is line 1.
    let bad: &[(usize, &str, &str)] = &[
        (10, "SKU-00010,Charm Bracelet,12.999,USD,,true,", "more decimals"),
        (321, "SKU-00321,Charm Bracelet,-1.00,USD,,true,", "negative"),
        (500, "SKU-00500,,12.00,USD,,true,", "name is empty"),
        (999, "BAD SKU,Charm Bracelet,12.00,USD,,true,", "may only hold"),
        (1234, "SKU-01234,Charm Bracelet,abc,USD,,true,", "not a decimal"),
        (1500, "SKU-01500,Charm Bracelet,12.00,USD,size,true,", "key=value"),
        (2000, "SKU-02000,Charm Bracelet,12.00,USD,,maybe,", "true/false"),
        (2500, "SKU-02500,Charm Bracelet,12.00,EUR,,true,", "catalog is in USD"),
        (2999, "SKU-00000,Charm Bracelet,12.00,USD,,true,", "twice"),
    ];
    let mut csv = String::from("sku,name,price,currency,attributes,active,retailer_id\n");
    for i in 0..3000 {
        match bad.iter().find(|(row, ..)| *row == i) {
            Some((_, line, _)) => csv.push_str(line),
            None if i == 5 => csv.push_str("SKU-00005,\"Silver Chain, 45cm\",30,USD,material=silver,,"),
            None => csv.push_str(&csv_row(i)),
        }
        csv.push('\n');
    }
    let expected: Vec<(i32, &str, &str)> = bad
        .iter()
        .map(|(row, line, reason)| (*row as i32 + 2, line.split(',').next().unwrap_or_default(), *reason))
        .collect();

    let refused = manager.import_csv(&csv, false).await.expect("answered with row errors");
    assert_eq!(refused.upserted, 0);
    assert_row_errors(&refused.errors, &expected);
    assert_eq!(catalog_size(&app, &tenant).await, 0, "nothing written");

    let imported = manager.import_csv(&csv, true).await.expect("good rows written");
    assert_eq!(imported.upserted, 3000 - bad.len() as i32);
    assert_row_errors(&imported.errors, &expected);
    assert_eq!(catalog_size(&app, &tenant).await, 3000 - bad.len() as i64);

    let chain = manager.get_item("SKU-00005").await.expect("quoted name");
    assert_eq!(chain.name, "Silver Chain, 45cm");
    assert_eq!(chain.price, Some(money(3000, "USD")));
    assert!(chain.active, "active defaults to true");
    assert_eq!(chain.retailer_id, "");
    let charm = manager.get_item("SKU-00042").await.expect("a generated row");
    assert_eq!(charm.name, "Charm Bracelet 42");
    assert_eq!(charm.price, Some(money(5242, "USD")));
    assert_eq!(charm.attributes.get("size").map(String::as_str), Some("11"));
    assert_eq!(charm.retailer_id, "WA-00042");
    assert_status(manager.get_item("SKU-02500").await, Code::NotFound, &[]);
}

#[tokio::test]
async fn prices_must_be_in_the_tenants_currency() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let admin = app.caller(&tenant, Role::Admin);
    let settings = admin.update_settings("eur", 0).await.expect("currency set");
    assert_eq!(settings.currency, "EUR");
    let manager = app.manager(&tenant);

    // (row, accepted, what the refusal says)
    let table: Vec<(pb::CatalogItemInput, Option<&str>)> = vec![
        (pb::CatalogItemInput { price: Some(money(1999, "EUR")), ..item("EUR-1", "Euro priced", 0) }, None),
        (item("USD-1", "Dollar priced", 1999), Some("catalog is in EUR")),
        (pb::CatalogItemInput { price: Some(money(1999, "GBP")), ..item("GBP-1", "Pound priced", 0) }, Some("EUR")),
    ];
    for (row, refusal) in table {
        let sku = row.sku.clone();
        let response = manager.upsert(vec![row], false).await.expect("answered");
        match refusal {
            None => assert!(response.errors.is_empty() && response.upserted == 1, "{sku}: {response:?}"),
            Some(reason) => assert_row_errors(&response.errors, &[(1, &sku, reason)]),
        }
    }
    let csv = "sku,name,price,currency\nEUR-2,Euro row,5.50,EUR\nUSD-2,Dollar row,5.50,USD\n";
    let response = manager.import_csv(csv, false).await.expect("answered");
    assert_row_errors(&response.errors, &[(3, "USD-2", "catalog is in EUR")]);
    assert_eq!(catalog_size(&app, &tenant).await, 1);
}

#[tokio::test]
async fn listing_the_catalog_page_by_page_yields_every_active_item_exactly_once() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    // Inserted out of order, plus one inactive item that a listing leaves out.
    let mut rows: Vec<pb::CatalogItemInput> =
        (0..50).map(|i| item(&format!("P-{:02}", (i * 37) % 50), &format!("Pendant {i}"), 1000 + i)).collect();
    rows.push(pb::CatalogItemInput { active: Some(false), ..item("P-ZZ-OLD", "Discontinued", 10) });
    manager.upsert(rows, false).await.expect("catalog");

    let viewer = app.caller(&tenant, Role::Viewer);
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = viewer.list(7, &token).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 7);
        assert_eq!(page.catalog_version, 1);
        seen.extend(page.items.into_iter().map(|i| i.sku));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 20, "pagination does not end");
    }
    let expected: Vec<String> = (0..50).map(|i| format!("P-{i:02}")).collect();
    assert_eq!(seen, expected, "every item once, in SKU order");
    assert_eq!(pages, 8);
    assert_status(viewer.list(7, "%%%not-a-token").await, Code::InvalidArgument, &[]);
}

#[tokio::test]
async fn a_catalog_item_reads_back_as_written() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    let row = pb::CatalogItemInput {
        sku: "HOOP-G-7".into(),
        name: "Gold Hoop Earrings".into(),
        attributes: [("Size".to_string(), "7".to_string()), ("colour".to_string(), " gold ".to_string())].into(),
        price: Some(money(1299, "USD")),
        active: None,
        retailer_id: "wa-hoop-7".into(),
        product_id: "HOOP".into(),
    };
    manager.upsert(vec![row], false).await.expect("upsert");

    let read = app.caller(&tenant, Role::Viewer).get_item("HOOP-G-7").await.expect("item");
    assert_eq!(read.name, "Gold Hoop Earrings");
    assert_eq!(read.price, Some(money(1299, "USD")));
    let attributes: Vec<(&str, &str)> = read.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut attributes = attributes;
    attributes.sort();
    assert_eq!(attributes, [("colour", "gold"), ("size", "7")]);
    assert!(read.active);
    assert_eq!((read.retailer_id.as_str(), read.product_id.as_str()), ("wa-hoop-7", "HOOP"));
    assert!(read.updated_at.is_some());
    for unknown in ["HOOP-G-8", "not a sku"] {
        assert_status(manager.get_item(unknown).await, Code::NotFound, &[]);
    }
}

#[tokio::test]
async fn every_catalog_change_publishes_catalog_changed_with_the_new_version() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);

    let first = manager.upsert(vec![item("A", "Anklet", 900), item("B", "Bangle", 1500)], false).await.expect("first");
    let refused = manager.upsert(vec![item("bad sku", "Bad", 1)], false).await.expect("refused");
    assert_eq!(refused.upserted, 0);
    let second = manager.import_csv("sku,name,price,currency\nC,Cuff,19.00,USD\n", false).await.expect("second");
    assert_eq!((first.catalog_version, second.catalog_version), (1, 2));

    app.wait_outbox_drained().await;
    let events = app.inventory_events::<CatalogChanged>().await;
    let seen: Vec<(i64, BTreeSet<String>, bool)> =
        events.iter().map(|(_, e)| (e.catalog_version, e.skus.iter().cloned().collect(), e.truncated)).collect();
    assert_eq!(
        seen,
        [(1, BTreeSet::from(["A".to_string(), "B".to_string()]), false), (2, BTreeSet::from(["C".to_string()]), false)],
        "one event per accepted change, none for the refused one"
    );
    let subjects: Vec<String> = app
        .stream_envelopes("inventory")
        .await
        .into_iter()
        .filter(|(_, e)| e.is::<CatalogChanged>())
        .map(|(subject, _)| subject)
        .collect();
    let expected_subject = format!("{}.inventory.v1.catalog_changed.{}", app.env.namespace, tenant.id);
    assert!(subjects.iter().all(|s| *s == expected_subject), "{subjects:?}");
    assert!(events.iter().all(|(e, _)| e.tenant_id == tenant.id));
}

#[tokio::test]
async fn a_retailer_id_used_twice_is_a_row_error_not_an_internal_error() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let manager = app.manager(&tenant);
    let with_retailer =
        |sku: &str, retailer: &str| pb::CatalogItemInput { retailer_id: retailer.into(), ..item(sku, sku, 100) };

    let response = manager
        .upsert(vec![with_retailer("A", "wa-1"), with_retailer("B", "wa-1")], false)
        .await
        .expect("answered with a row error, not a failure");
    assert_row_errors(&response.errors, &[(2, "B", "retailer")]);
    assert_eq!(catalog_size(&app, &tenant).await, 0);

    manager.upsert(vec![with_retailer("A", "wa-1")], false).await.expect("A");
    let response = manager
        .upsert(vec![with_retailer("C", "wa-1")], false)
        .await
        .expect("answered with a row error, not a failure");
    assert_row_errors(&response.errors, &[(1, "C", "retailer")]);
}
