//! End to end: a signed WhatsApp webhook through ingest becomes the expected draft.

use std::time::Duration;

use ingest::config::DEV_META_APP_SECRET;
use proto::draft::v1 as pb;
use proto::ingest::v1 as ing;
use testkit::Role;

use crate::helpers::{System, WAIT, authorized, spawn_system_with};

const PHONE_NUMBER_ID: &str = "106540352242922";

fn text_webhook(message_id: &str, from: &str, body: &str) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
                    "contacts": [{ "profile": { "name": "Ada Obi" }, "wa_id": from }],
                    "messages": [{ "from": from, "id": message_id, "timestamp": "1763776000", "type": "text", "text": { "body": body } }]
                }
            }]
        }]
    })
    .to_string()
}

fn cart_webhook(message_id: &str, from: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{
        "messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_NUMBER_ID}"}},
        "contacts":[{{"profile":{{"name":"Ada Obi"}},"wa_id":"{from}"}}],
        "messages":[{{"from":"{from}","id":"{message_id}","timestamp":"1763776000","type":"order","order":{{
          "catalog_id":"cat-1","text":"for my sister","product_items":[
            {{"product_retailer_id":"wa-hoop-g-7","quantity":2,"item_price":12.99,"currency":"USD"}},
            {{"product_retailer_id":"wa-chain-s","quantity":1,"item_price":27.5,"currency":"USD"}}]}}}}]}}}}]}}]}}"#
    )
}

async fn system_with_channel() -> System {
    let system = spawn_system_with(true).await;
    system.seed_default_catalog().await;
    let mut channels =
        ing::channel_service_client::ChannelServiceClient::connect(system.ingest_grpc.clone().expect("ingest"))
            .await
            .expect("grpc");
    channels
        .register_channel(authorized(
            ing::RegisterChannelRequest {
                tenant_id: system.tenant.to_string(),
                platform: ing::Platform::Whatsapp as i32,
                external_id: PHONE_NUMBER_ID.into(),
                display_name: "Demo".into(),
            },
            &testkit::token(None, Role::Operator),
        ))
        .await
        .expect("register");
    system
}

async fn post(system: &System, body: &str) {
    let signature = ingest::domain::signature::sign_meta(DEV_META_APP_SECRET.as_bytes(), body.as_bytes());
    let response = testkit::http_client()
        .post(format!("{}/webhooks/whatsapp", system.ingest_http.clone().expect("ingest")))
        .header("x-hub-signature-256", signature)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
}

async fn drafts(system: &System) -> Vec<pb::Draft> {
    system
        .drafts()
        .await
        .list_drafts(authorized(pb::ListDraftsRequest::default(), &system.token(Role::Viewer)))
        .await
        .expect("list")
        .into_inner()
        .drafts
}

async fn wait_for_drafts(system: &System, n: usize) -> Vec<pb::Draft> {
    testkit::eventually(&format!("{n} drafts"), WAIT, || async { drafts(system).await.len() == n }).await;
    drafts(system).await
}

#[tokio::test]
async fn a_signed_whatsapp_text_order_becomes_the_expected_draft_and_follow_ups_add_to_it() {
    let system = system_with_channel().await;
    post(&system, &text_webhook("wamid.A1", "2348012345678", "Hi! 2 gold hoops size 8 and the silver chain pls")).await;
    let found = wait_for_drafts(&system, 1).await;
    let draft = &found[0];
    assert_eq!(draft.source, "whatsapp");
    let lines: Vec<(&str, i64)> = draft.items.iter().map(|i| (i.sku.as_str(), i.quantity)).collect();
    assert_eq!(lines, vec![("HOOP-G-8", 2), ("CHAIN-S", 1)]);
    let customer = draft.customer.as_ref().expect("customer");
    assert_eq!(customer.phone_e164, "+2348012345678");
    assert_eq!(customer.name, "Ada Obi");
    assert_eq!(draft.total.as_ref().map(|m| m.amount_minor), Some(2 * 1399 + 3000));

    // The same message again, and the same text re-sent: nothing changes.
    post(&system, &text_webhook("wamid.A1", "2348012345678", "Hi! 2 gold hoops size 8 and the silver chain pls")).await;
    post(&system, &text_webhook("wamid.A2", "2348012345678", "Hi! 2 gold hoops size 8 and the silver chain pls")).await;
    // A follow-up from the same customer adds to the same draft.
    post(&system, &text_webhook("wamid.A3", "2348012345678", "oh and 1 more gold hoop size 8")).await;
    testkit::eventually("the follow-up was merged", WAIT, || async {
        let all = drafts(&system).await;
        all.len() == 1 && all[0].items.iter().any(|i| i.sku == "HOOP-G-8" && i.quantity == 3)
    })
    .await;
    let merged = drafts(&system).await.remove(0);
    assert_eq!(merged.items.len(), 2);
    // Chit-chat creates nothing.
    post(&system, &text_webhook("wamid.A4", "2348012345678", "thanks so much!")).await;
    post(&system, &text_webhook("wamid.B1", "4915112345678", "do you have the silver chain?")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(drafts(&system).await.len(), 1);
}

#[tokio::test]
async fn a_whatsapp_catalog_cart_maps_exactly_and_shows_price_differences() {
    let system = system_with_channel().await;
    post(&system, &cart_webhook("wamid.C1", "2348099999999")).await;
    let draft = wait_for_drafts(&system, 1).await.remove(0);
    let lines: Vec<(&str, i64, i64)> = draft
        .items
        .iter()
        .map(|i| (i.sku.as_str(), i.quantity, i.unit_price.as_ref().map(|m| m.amount_minor).unwrap_or_default()))
        .collect();
    assert_eq!(lines, vec![("HOOP-G-7", 2, 1299), ("CHAIN-S", 1, 3000)], "prices come from the catalog");
    assert!(!draft.items[0].price_mismatch, "12.99 matches the catalog");
    assert!(draft.items[1].price_mismatch, "27.50 in the cart, 30.00 in the catalog");
    assert_eq!(draft.items[1].message_price.as_ref().map(|m| m.amount_minor), Some(2750));
    let approved = system.approve(&draft.id).await.expect("approve");
    assert_eq!(system.list_orders().await[0].total.as_ref().map(|m| m.amount_minor), Some(2 * 1299 + 3000));
    assert!(!approved.order_code.is_empty());
}

#[tokio::test]
async fn a_trusted_customers_order_is_approved_automatically_through_the_same_approval_path() {
    let system = system_with_channel().await;
    let settings = pb::DraftSettings {
        ttl_minutes: 1440,
        auto_approve: true,
        trusted_customers: vec!["2348077777777".into()],
        currency: "USD".into(),
    };
    system
        .drafts()
        .await
        .update_settings(authorized(pb::UpdateSettingsRequest { settings: Some(settings) }, &system.token(Role::Admin)))
        .await
        .expect("settings");
    post(&system, &text_webhook("wamid.T1", "2348077777777", "2 gold hoops size 7 pls")).await;
    post(&system, &text_webhook("wamid.U1", "2348066666666", "1 silver chain pls")).await;
    testkit::eventually("the trusted customer's draft was approved", WAIT, || async {
        drafts(&system).await.iter().any(|d| d.status == pb::DraftStatus::Approved as i32)
    })
    .await;
    let all = drafts(&system).await;
    assert_eq!(all.len(), 2);
    let trusted = all
        .iter()
        .find(|d| d.customer.as_ref().is_some_and(|c| c.channel_customer_id == "2348077777777"))
        .expect("trusted");
    let other = all
        .iter()
        .find(|d| d.customer.as_ref().is_some_and(|c| c.channel_customer_id == "2348066666666"))
        .expect("other");
    assert_eq!(trusted.status, pb::DraftStatus::Approved as i32);
    assert!(!trusted.order_code.is_empty());
    assert_eq!(other.status, pb::DraftStatus::PendingReview as i32, "untrusted customers wait for a person");
    assert_eq!(system.stock("HOOP-G-7").await.reserved, 2);
    assert_eq!(system.list_orders().await.len(), 1);
}
