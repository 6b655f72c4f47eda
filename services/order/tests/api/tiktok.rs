//! TikTok Shop to order and back, end to end: a signed webhook through ingest, the order detail
//! fetched from a local server speaking TikTok's API (which checks our request signature), and
//! changes made here pushed back through the shared retry and circuit breaker.

use std::time::Duration;

use ingest::config::{DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET};
use proto::ingest::v1 as ing;
use proto::order::v1 as pb;
use testkit::Role;
use testkit::fake_tiktok::FakeTiktok;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SHOP_ID: &str = "7494049642642441621";
const ORDER_ID: &str = "576486316948490001";

struct World {
    fake: FakeTiktok,
    tenant: Uuid,
    ingest_http: String,
    order_grpc: String,
    tokens: Vec<CancellationToken>,
    _env: testkit::TestEnv,
}

impl Drop for World {
    fn drop(&mut self) {
        for token in &self.tokens {
            token.cancel();
        }
    }
}

async fn world(breaker: resilience::BreakerConfig) -> World {
    let env = testkit::TestEnv::new().await;
    let fake = FakeTiktok::start(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET).await;
    fake.set_access_token("ROW_shop_access");
    let ingest_app = ingest::startup::build(ingest::Config::for_tests(env.common("ingest")), CancellationToken::new())
        .await
        .expect("ingest");
    let (ingest_http, ingest_grpc) =
        (format!("http://{}", ingest_app.http_addr), format!("http://{}", ingest_app.grpc_addr));
    let ingest_token = ingest_app.token();
    tokio::spawn(ingest_app.run_until_stopped());

    let mut config = order::Config::for_tests(env.common("order"));
    config.ingest_url = ingest_grpc.clone();
    config.tiktok_api_base_url = fake.base_url.clone();
    config.tiktok_breaker = breaker;
    let order_app = order::startup::build(config, CancellationToken::new()).await.expect("order");
    let order_grpc = format!("http://{}", order_app.grpc_addr);
    let order_token = order_app.token();
    tokio::spawn(order_app.run_until_stopped());

    // The shop's channel and its credentials, as an operator and the tenant admin set them.
    let tenant = Uuid::new_v4();
    let mut channels =
        ing::channel_service_client::ChannelServiceClient::connect(ingest_grpc).await.expect("ingest grpc");
    let channel = channels
        .register_channel(
            auth::grpc::with_bearer(
                tonic::Request::new(ing::RegisterChannelRequest {
                    tenant_id: tenant.to_string(),
                    platform: ing::Platform::TiktokShop as i32,
                    external_id: SHOP_ID.into(),
                    display_name: "Shop".into(),
                }),
                &testkit::token(None, Role::Operator),
            )
            .expect("token"),
        )
        .await
        .expect("register")
        .into_inner();
    channels
        .set_channel_credentials(
            auth::grpc::with_bearer(
                tonic::Request::new(ing::SetChannelCredentialsRequest {
                    channel_id: channel.id,
                    credentials: Some(ing::ChannelCredentials {
                        access_token: "ROW_shop_access".into(),
                        refresh_token: "ROW_refresh".into(),
                        shop_cipher: "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3".into(),
                        access_token_expires_at: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
                        refresh_token_expires_at: None,
                    }),
                }),
                &testkit::token(Some(tenant), Role::Admin),
            )
            .expect("token"),
        )
        .await
        .expect("credentials");
    World { fake, tenant, ingest_http, order_grpc, tokens: vec![ingest_token, order_token], _env: env }
}

fn detail(status: &str, update_time: i64) -> serde_json::Value {
    serde_json::json!({
        "id": ORDER_ID, "status": status, "update_time": update_time, "create_time": 1763770000,
        "buyer_email": "v4bE3USDHPXBRNN2JTJECRMJ43K3U@scs3.tiktok.com",
        "line_items": [
            {"id": "1", "sku_id": "1729767803962038562", "seller_sku": "HOOP-G-7", "product_name": "Gold Hoop Earrings", "sku_name": "Size 7", "sale_price": "12.99", "original_price": "14.99", "currency": "USD"},
            {"id": "2", "sku_id": "1729767803962038562", "seller_sku": "HOOP-G-7", "product_name": "Gold Hoop Earrings", "sku_name": "Size 7", "sale_price": "12.99", "original_price": "14.99", "currency": "USD"},
            {"id": "3", "sku_id": "1729767803962099999", "seller_sku": "", "product_name": "Mystery Box", "sku_name": "Default", "sale_price": "5.00", "original_price": "5.00", "currency": "USD"}
        ],
        "payment": {"currency": "USD", "sub_total": "30.98", "shipping_fee": "4.99", "tax": "2.10", "seller_discount": "1.00", "platform_discount": "2.00", "total_amount": "35.07", "original_total_product_price": "34.98"},
        "recipient_address": {"name": "Ada Obi", "phone_number": "(+1)213-***-1234", "address_line1": "1 Main St", "postal_code": "90001", "region_code": "US",
            "district_info": [{"address_level_name": "State", "address_name": "California"}, {"address_level_name": "City", "address_name": "Los Angeles"}]},
        "packages": [{"id": "1153891868590053777"}]
    })
}

async fn notify(world: &World, notification_id: &str, status: &str, update_time: i64) {
    // Bare JSON numbers above 2^53 for the ids, as TikTok sends them.
    let body = format!(
        r#"{{"type":1,"tts_notification_id":"{notification_id}","shop_id":{SHOP_ID},"timestamp":1763776000,"data":{{"order_id":{ORDER_ID},"order_status":"{status}","is_on_hold_order":false,"update_time":{update_time}}}}}"#
    );
    let signature =
        ingest::domain::signature::sign_tiktok(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET.as_bytes(), body.as_bytes());
    let response = testkit::http_client()
        .post(format!("{}/webhooks/tiktok", world.ingest_http))
        .header("authorization", signature)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
}

async fn client(world: &World) -> pb::order_service_client::OrderServiceClient<tonic::transport::Channel> {
    pb::order_service_client::OrderServiceClient::connect(world.order_grpc.clone()).await.expect("order grpc")
}

async fn tiktok_orders(world: &World) -> Vec<pb::Order> {
    let request = pb::ListOrdersRequest {
        filter: Some(pb::OrderFilter { source: pb::OrderSource::TiktokShop as i32, ..Default::default() }),
        page_size: 50,
        ..Default::default()
    };
    client(world)
        .await
        .list_orders(
            auth::grpc::with_bearer(tonic::Request::new(request), &testkit::token(Some(world.tenant), Role::Viewer))
                .expect("token"),
        )
        .await
        .expect("list")
        .into_inner()
        .orders
}

async fn get(world: &World, id: &str) -> pb::Order {
    client(world)
        .await
        .get_order(
            auth::grpc::with_bearer(
                tonic::Request::new(pb::GetOrderRequest { id: id.into() }),
                &testkit::token(Some(world.tenant), Role::Viewer),
            )
            .expect("token"),
        )
        .await
        .expect("get")
        .into_inner()
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_tiktok_webhook_becomes_an_order_with_the_platforms_amounts_and_later_statuses_only_move_it_forward() {
    let world = world(resilience::BreakerConfig::default()).await;
    world.fake.put_order(detail("AWAITING_SHIPMENT", 100));
    notify(&world, "7327112393057371910", "AWAITING_SHIPMENT", 100).await;
    testkit::eventually("the TikTok order exists", WAIT, || async { tiktok_orders(&world).await.len() == 1 }).await;
    let order = tiktok_orders(&world).await.remove(0);
    assert_eq!(order.source_id, ORDER_ID, "the 18-digit id survived the bare JSON number");
    assert_eq!(order.status, pb::OrderStatus::Confirmed as i32);
    assert_eq!(order.payment_status, pb::PaymentStatus::Paid as i32);
    assert_eq!(order.total.as_ref().map(|m| m.amount_minor), Some(3507), "the amount the buyer paid");
    assert_eq!(order.discount.as_ref().map(|m| m.amount_minor), Some(300));
    assert!(order.attention.contains(&"unmapped_sku".to_string()), "{:?}", order.attention);
    let hoop = order.items.iter().find(|i| i.sku == "HOOP-G-7").expect("hoop");
    assert_eq!(hoop.quantity, 2);
    assert_eq!(order.reservation_reference, format!("order:tiktok:{ORDER_ID}"));

    // The same notification again: nothing new.
    notify(&world, "7327112393057371910", "AWAITING_SHIPMENT", 100).await;
    // A jump past states we did not see is applied and recorded.
    world.fake.put_order(detail("IN_TRANSIT", 300));
    notify(&world, "7327112393057371911", "IN_TRANSIT", 300).await;
    testkit::eventually("shipped", WAIT, || async {
        get(&world, &order.id).await.status == pb::OrderStatus::Shipped as i32
    })
    .await;
    // A late, older notification never moves it back (TikTok's detail says so too).
    world.fake.put_order(detail("AWAITING_COLLECTION", 200));
    notify(&world, "7327112393057371912", "AWAITING_COLLECTION", 200).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after = get(&world, &order.id).await;
    assert_eq!(after.status, pb::OrderStatus::Shipped as i32);
    assert_eq!(tiktok_orders(&world).await.len(), 1);
    let last = after.history.last().expect("history");
    assert_eq!(last.source, "tiktok_shop");
    assert_eq!((last.from, last.to), (pb::OrderStatus::Confirmed as i32, pb::OrderStatus::Shipped as i32));
    assert!(world.fake.writes().is_empty(), "changes that came from TikTok are never pushed back");
    assert!(after.sync.is_none());
}

#[tokio::test]
async fn a_cancellation_made_here_is_pushed_to_tiktok_through_429_and_5xx() {
    let world = world(resilience::BreakerConfig::default()).await;
    world.fake.put_order(detail("AWAITING_SHIPMENT", 100));
    notify(&world, "7327112393057372000", "AWAITING_SHIPMENT", 100).await;
    testkit::eventually("the TikTok order exists", WAIT, || async { tiktok_orders(&world).await.len() == 1 }).await;
    let order = tiktok_orders(&world).await.remove(0);
    world.fake.fail_next(&[429, 503]);
    client(&world)
        .await
        .cancel_order(
            auth::grpc::with_bearer(
                tonic::Request::new(pb::CancelOrderRequest {
                    order_id: order.id.clone(),
                    reason: "out of stock".into(),
                    expected_version: 0,
                }),
                &testkit::token(Some(world.tenant), Role::Manager),
            )
            .expect("token"),
        )
        .await
        .expect("the local cancel never waits for TikTok");
    testkit::eventually("synced", WAIT, || async {
        get(&world, &order.id).await.sync.is_some_and(|s| s.status == "synced")
    })
    .await;
    let writes = world.fake.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "/return_refund/202309/cancellations");
    assert_eq!(writes[0].1["order_id"], ORDER_ID);
}

#[tokio::test]
async fn an_outage_opens_the_breaker_and_the_failure_is_visible_without_blocking_the_order() {
    let breaker = resilience::BreakerConfig { failure_threshold: 2, reset_timeout: Duration::from_secs(60) };
    let world = world(breaker).await;
    world.fake.put_order(detail("AWAITING_SHIPMENT", 100));
    notify(&world, "7327112393057373000", "AWAITING_SHIPMENT", 100).await;
    testkit::eventually("the TikTok order exists", WAIT, || async { tiktok_orders(&world).await.len() == 1 }).await;
    let order = tiktok_orders(&world).await.remove(0);
    world.fake.fail_next(&[503; 50]);
    let cancelled = client(&world)
        .await
        .cancel_order(
            auth::grpc::with_bearer(
                tonic::Request::new(pb::CancelOrderRequest {
                    order_id: order.id.clone(),
                    reason: "buyer asked".into(),
                    expected_version: 0,
                }),
                &testkit::token(Some(world.tenant), Role::Manager),
            )
            .expect("token"),
        )
        .await
        .expect("cancelled locally")
        .into_inner();
    assert_eq!(cancelled.status, pb::OrderStatus::Cancelled as i32);
    testkit::eventually("the breaker opened and the failure is recorded", WAIT, || async {
        get(&world, &order.id)
            .await
            .sync
            .is_some_and(|s| s.status == "failed" && s.last_error.contains("circuit breaker open"))
    })
    .await;
    assert!(world.fake.writes().is_empty());
}
