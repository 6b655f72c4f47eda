//! UpdateOrder: notes, tags and the shipping address, guarded by the expected version, only
//! before shipping, with the address validated.

use order::domain::lifecycle::Status;
use uuid::Uuid;

use crate::helpers::{Tenant, address, expect_code, pb, spawn_app};

fn edit(order: &pb::Order) -> pb::UpdateOrderRequest {
    pb::UpdateOrderRequest { order_id: order.id.clone(), expected_version: order.version, ..Default::default() }
}

#[tokio::test]
async fn notes_tags_and_address_change_at_the_expected_version() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let agent = app.agent(&tenant);

    let mut request = edit(&order);
    request.notes = Some("  leave at the gate ".into());
    request.tags = vec!["VIP".into(), " gift ".into(), "  ".into()];
    request.set_tags = true;
    request.shipping_address = Some(address("ng"));
    let edited = agent.update(request).await.expect("edit");
    assert_eq!(edited.version, order.version + 1);
    assert_eq!(edited.notes, "leave at the gate");
    assert_eq!(edited.tags, ["vip", "gift"]);
    assert_eq!(edited.shipping_address.as_ref().map(|a| a.country_code.as_str()), Some("NG"));

    let stored = agent.get(&order.id).await.expect("get");
    assert_eq!(
        (stored.notes.as_str(), stored.tags.clone(), stored.version),
        ("leave at the gate", edited.tags, edited.version)
    );
    assert_eq!(stored.shipping_address.as_ref().expect("address").line1, "12 Marina Road");

    // Only what is sent changes: tags stay when `set_tags` is false.
    let mut notes_only = edit(&stored);
    notes_only.notes = Some("call first".into());
    let again = agent.update(notes_only).await.expect("notes only");
    assert_eq!((again.notes.as_str(), again.tags.len()), ("call first", 2));

    let stale = expect_code(agent.update(edit(&order)).await, tonic::Code::Aborted, "a stale version");
    assert!(stale.message().contains(&order.version.to_string()), "{}", stale.message());

    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM orders.audit_log WHERE order_id = $1 AND action = 'edited'")
            .bind(order.id.parse::<Uuid>().expect("uuid"))
            .fetch_one(&app.admin)
            .await
            .expect("audit");
    assert_eq!(audit, 2);
}

#[tokio::test]
async fn an_order_can_be_edited_until_it_ships() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let agent = app.agent(&tenant);
    for (state, editable) in [
        (Status::PendingPayment, true),
        (Status::Confirmed, true),
        (Status::Processing, true),
        (Status::Shipped, false),
        (Status::Delivered, false),
        (Status::Returned, false),
        (Status::Cancelled, false),
    ] {
        let order = app.order_in(&tenant, &format!("draft-{state}"), state).await;
        let mut request = edit(&order);
        request.notes = Some("change".into());
        let result = agent.update(request).await;
        if editable {
            assert!(result.is_ok(), "{state}: {result:?}");
        } else {
            let refused = expect_code(result, tonic::Code::FailedPrecondition, &format!("edit when {state}"));
            assert!(refused.message().contains(state.as_str()), "{}", refused.message());
        }
    }
}

#[tokio::test]
async fn a_bad_address_or_bad_tags_are_invalid_arguments() {
    let app = spawn_app().await;
    let tenant = Tenant::new();
    let order = app.create_order(&tenant, "draft-1", &[("SKU-1", 1000, 1)]).await;
    let agent = app.agent(&tenant);
    let spoilt = |spoil: fn(&mut pb::Address)| {
        let mut address = address("NG");
        spoil(&mut address);
        let mut request = edit(&order);
        request.shipping_address = Some(address);
        request
    };
    let cases: [(&str, pb::UpdateOrderRequest); 6] = [
        ("a country name instead of a code", spoilt(|a| a.country_code = "Nigeria".into())),
        ("a three-letter country code", spoilt(|a| a.country_code = "NGA".into())),
        ("no street", spoilt(|a| a.line1 = " ".into())),
        ("no city", spoilt(|a| a.city = String::new())),
        ("a phone that is not E.164", spoilt(|a| a.phone_e164 = "08012345678".into())),
        ("too many tags", {
            let mut request = edit(&order);
            request.tags = (0..21).map(|n| format!("tag{n}")).collect();
            request.set_tags = true;
            request
        }),
    ];
    for (what, request) in cases {
        expect_code(agent.update(request).await, tonic::Code::InvalidArgument, what);
    }
    let stored = agent.get(&order.id).await.expect("get");
    assert_eq!(stored.version, order.version, "nothing changed");
    assert!(stored.shipping_address.is_none());
}
