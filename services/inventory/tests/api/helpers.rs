//! `spawn_app`: the inventory service in-process on its own database and bus namespace, a gRPC
//! caller per tenant and role, catalog and stock seeding, and the bus as the order service
//! uses it (publishing order events) and as a subscriber sees it (inventory events).

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream;
use bus::{Envelope, Namespace};
use proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use sqlx::PgPool;
use testkit::Role;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::transport::Channel;
use uuid::Uuid;

pub use proto::inventory::v1 as pb;

/// How long anything asynchronous (the relay, the order-events consumer) may take in a test.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub env: testkit::TestEnv,
    pub namespace: Namespace,
    pub http_addr: SocketAddr,
    /// A superuser pool on the test database (the service's tables are in schema `inventory`).
    pub admin: PgPool,
    channel: Channel,
    jetstream: jetstream::Context,
    token: CancellationToken,
    _running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Starts the service and waits until its streams exist (the service creates them at start-up),
/// so tests can publish order events at once.
pub async fn spawn_app() -> TestApp {
    spawn_app_configured(|_| {}).await
}

/// [`spawn_app`], with the test's changes to the service's test configuration.
pub async fn spawn_app_configured(configure: impl FnOnce(&mut inventory::Config)) -> TestApp {
    let env = testkit::TestEnv::new().await;
    let token = CancellationToken::new();
    let mut config = inventory::Config::for_tests(env.common("inventory"));
    configure(&mut config);
    let app = inventory::startup::build(config, token.clone()).await.expect("inventory starts");
    let (http_addr, grpc_addr) = (app.http_addr, app.grpc_addr);
    let running = tokio::spawn(app.run_until_stopped());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    let jetstream = jetstream::new(async_nats::connect(testkit::nats_url()).await.expect("nats"));
    let namespace = Namespace::new(&env.namespace).expect("namespace");
    let admin = env.db.admin().await.expect("admin pool");
    let app = TestApp { env, namespace, http_addr, admin, channel, jetstream, token, _running: running };
    let consumer = inventory::inbound::order_events::CONSUMER;
    testkit::eventually("the order stream and inventory's consumer on it exist", PATIENCE, || async {
        match app.jetstream.get_stream(app.namespace.stream_name("order")).await {
            Ok(stream) => stream.get_consumer::<jetstream::consumer::pull::Config>(consumer).await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    app
}

/// A tenant of its own; its tokens carry its id.
#[derive(Debug, Clone, Copy)]
pub struct Tenant {
    pub id: Uuid,
}

impl Tenant {
    pub fn new() -> Self {
        Self { id: Uuid::new_v4() }
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::new()
    }
}

/// One ReserveMany entry: (on_behalf_of, reference, items).
pub type ManyEntry<'a> = (&'a str, &'a str, &'a [(&'a str, i64)]);

/// Calls the API as one principal (or as nobody); every call carries the bearer token.
#[derive(Clone)]
pub struct Caller {
    client: InventoryServiceClient<Channel>,
    token: Option<String>,
}

impl TestApp {
    pub fn caller(&self, tenant: &Tenant, role: Role) -> Caller {
        Caller {
            client: InventoryServiceClient::new(self.channel.clone()),
            token: Some(testkit::token(Some(tenant.id), role)),
        }
    }

    pub fn manager(&self, tenant: &Tenant) -> Caller {
        self.caller(tenant, Role::Manager)
    }

    /// A caller without a token.
    pub fn anonymous(&self) -> Caller {
        Caller { client: InventoryServiceClient::new(self.channel.clone()), token: None }
    }

    /// A caller presenting exactly this token.
    pub fn with_token(&self, token: String) -> Caller {
        Caller { client: InventoryServiceClient::new(self.channel.clone()), token: Some(token) }
    }

    /// Puts the SKUs in the catalog (USD prices) and receives `on_hand` of each.
    pub async fn seed(&self, tenant: &Tenant, stock: &[(&str, i64)]) {
        let manager = self.manager(tenant);
        let items = stock.iter().map(|(sku, _)| item(sku, &format!("Item {sku}"), 1000)).collect();
        let response = manager.upsert(items, false).await.expect("seed catalog");
        assert!(response.errors.is_empty(), "seed rows are valid: {:?}", response.errors);
        for (sku, on_hand) in stock {
            if *on_hand > 0 {
                manager.adjust(received(sku, *on_hand)).await.expect("seed stock");
            }
        }
    }

    pub async fn admin_scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.admin).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Held reservations of a tenant.
    pub async fn held_reservations(&self, tenant: &Tenant) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM inventory.reservations WHERE tenant_id = $1 AND status = 'held'")
            .bind(tenant.id)
            .fetch_one(&self.admin)
            .await
            .expect("count reservations")
    }

    /// Publishes an order event the way the order service's outbox relay does: the envelope as
    /// JSON on its subject, `Nats-Msg-Id` = the envelope id. Returns the untyped envelope.
    pub async fn publish_order_event<T: bus::Event>(&self, tenant: &Tenant, order_id: &str, data: T) -> Envelope {
        let envelope = Envelope::new(tenant.id, format!("order:{order_id}"), data, None);
        let subject = envelope.subject(&self.namespace);
        let envelope = envelope.into_untyped().expect("event as json");
        let message_id = envelope.id.to_string();
        self.publish_envelope(&subject, &envelope, &message_id).await;
        envelope
    }

    /// Publishes an envelope again under another `Nats-Msg-Id`: a redelivery the broker's
    /// de-duplication does not catch (after its window, or from a relay that lost its state).
    pub async fn redeliver(&self, envelope: &Envelope) {
        let domain_and_name = envelope.event_type.split_once('.').expect("type is domain.name");
        let subject =
            self.namespace.event_subject(domain_and_name.0, envelope.version, domain_and_name.1, envelope.tenant_id);
        self.publish_envelope(&subject, envelope, &Uuid::new_v4().to_string()).await;
    }

    async fn publish_envelope(&self, subject: &str, envelope: &Envelope, message_id: &str) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(bus::header_names::MSG_ID, message_id);
        headers.insert(bus::header_names::PARTITION_KEY, envelope.aggregate_id.as_str());
        let payload = serde_json::to_vec(envelope).expect("envelope json");
        let ack = self
            .jetstream
            .publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("puback");
        assert!(!ack.duplicate, "the broker took {message_id} as a duplicate");
    }

    /// Waits until inventory's consumer has acknowledged everything in the order stream.
    pub async fn wait_order_events_handled(&self) {
        let consumer = inventory::inbound::order_events::CONSUMER;
        testkit::eventually("inventory acknowledged every order event", PATIENCE, || async {
            let Ok(mut stream) = self.jetstream.get_stream(self.namespace.stream_name("order")).await else {
                return false;
            };
            let Ok(last) = stream.info().await.map(|i| i.state.last_sequence) else { return false };
            let Ok(mut consumer) = stream.get_consumer::<jetstream::consumer::pull::Config>(consumer).await else {
                return false;
            };
            consumer
                .info()
                .await
                .is_ok_and(|i| i.ack_floor.stream_sequence >= last && i.num_ack_pending == 0 && i.num_pending == 0)
        })
        .await;
    }

    /// Every message in one of this app's streams, in order, as (subject, envelope).
    pub async fn stream_envelopes(&self, domain: &str) -> Vec<(String, Envelope)> {
        let Ok(mut stream) = self.jetstream.get_stream(self.namespace.stream_name(domain)).await else {
            return Vec::new();
        };
        let last = stream.info().await.expect("stream info").state.last_sequence;
        let mut out = Vec::new();
        for sequence in 1..=last {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                let envelope: Envelope = serde_json::from_slice(&message.payload).expect("an envelope");
                out.push((message.subject.to_string(), envelope));
            }
        }
        out
    }

    /// The inventory events of type `T` published so far, with their envelopes.
    pub async fn inventory_events<T: bus::Event>(&self) -> Vec<(Envelope, T)> {
        self.stream_envelopes("inventory")
            .await
            .into_iter()
            .filter(|(_, envelope)| envelope.is::<T>())
            .map(|(_, envelope)| {
                let data = envelope.decode::<T>().expect("decodes");
                (envelope, data)
            })
            .collect()
    }

    /// Waits until the outbox has published everything committed so far.
    pub async fn wait_outbox_drained(&self) {
        testkit::eventually("the outbox is drained", PATIENCE, || async {
            self.admin_scalar("SELECT count(*) FROM inventory.outbox WHERE published_at IS NULL").await == 0
        })
        .await;
    }

    /// Messages inventory's consumer dead-lettered.
    pub async fn dead_letters(&self) -> usize {
        self.stream_envelopes("dlq").await.len()
    }

    /// A counter from `/metrics`, summed over the series whose labels contain every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let body = testkit::http_client()
            .get(format!("http://{}/metrics", self.http_addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        body.lines()
            .filter(|line| line.starts_with(name) && !line.starts_with('#'))
            .filter(|line| labels.iter().all(|(k, v)| line.contains(&format!("{k}=\"{v}\""))))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn authorized<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let request = tonic::Request::new(message);
    match token {
        Some(token) => auth::grpc::with_bearer(request, token).expect("token header"),
        None => request,
    }
}

impl Caller {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(message, self.token.as_deref())
    }

    pub async fn reserve(&self, reference: &str, items: &[(&str, i64)]) -> Result<pb::Reservation, Status> {
        let items = items.iter().map(|(sku, quantity)| reserve_item(sku, *quantity)).collect();
        self.reserve_items(reference, items).await
    }

    pub async fn reserve_items(&self, reference: &str, items: Vec<pb::ReserveItem>) -> Result<pb::Reservation, Status> {
        let request = self.request(pb::ReserveRequest { reference: reference.into(), items });
        self.client.clone().reserve(request).await.map(tonic::Response::into_inner)
    }

    /// ReserveMany with `(on_behalf_of, reference, items)` per entry.
    pub async fn reserve_many(
        &self,
        entries: &[ManyEntry<'_>],
    ) -> Result<Vec<pb::reserve_many_result::Outcome>, Status> {
        let entries = entries
            .iter()
            .map(|(user, reference, items)| pb::ReserveManyEntry {
                reserve: Some(pb::ReserveRequest {
                    reference: reference.to_string(),
                    items: items.iter().map(|(sku, quantity)| reserve_item(sku, *quantity)).collect(),
                }),
                on_behalf_of: user.to_string(),
            })
            .collect();
        self.reserve_many_raw(pb::ReserveManyRequest { entries }).await
    }

    pub async fn reserve_many_raw(
        &self,
        request: pb::ReserveManyRequest,
    ) -> Result<Vec<pb::reserve_many_result::Outcome>, Status> {
        let response = self.client.clone().reserve_many(self.request(request)).await?.into_inner();
        Ok(response.results.into_iter().map(|r| r.outcome.expect("every result has an outcome")).collect())
    }

    pub async fn check_availability(
        &self,
        request: pb::AvailabilityRequest,
    ) -> Result<pb::AvailabilityResponse, Status> {
        let request = self.request(request);
        self.client.clone().check_availability(request).await.map(tonic::Response::into_inner)
    }

    pub async fn release(&self, reference: &str) -> Result<pb::Reservation, Status> {
        let request = self.request(pb::ReleaseRequest { reference: reference.into(), reason: "test".into() });
        self.client.clone().release(request).await.map(tonic::Response::into_inner)
    }

    pub async fn commit(&self, reference: &str) -> Result<pb::Reservation, Status> {
        let request = self.request(pb::CommitRequest { reference: reference.into() });
        self.client.clone().commit(request).await.map(tonic::Response::into_inner)
    }

    pub async fn restock(&self, reference: &str) -> Result<pb::Reservation, Status> {
        let request = self.request(pb::RestockRequest { reference: reference.into() });
        self.client.clone().restock(request).await.map(tonic::Response::into_inner)
    }

    pub async fn get_reservation(&self, reference: &str) -> Result<pb::Reservation, Status> {
        let request = self.request(pb::GetReservationRequest { reference: reference.into() });
        self.client.clone().get_reservation(request).await.map(tonic::Response::into_inner)
    }

    pub async fn upsert(
        &self,
        items: Vec<pb::CatalogItemInput>,
        skip_invalid: bool,
    ) -> Result<pb::UpsertCatalogResponse, Status> {
        let request = self.request(pb::UpsertCatalogRequest { items, skip_invalid });
        self.client.clone().upsert_catalog(request).await.map(tonic::Response::into_inner)
    }

    pub async fn import_csv(&self, csv: &str, skip_invalid: bool) -> Result<pb::UpsertCatalogResponse, Status> {
        let request = self.request(pb::ImportCatalogCsvRequest { csv: csv.into(), skip_invalid });
        self.client.clone().import_catalog_csv(request).await.map(tonic::Response::into_inner)
    }

    pub async fn get_item(&self, sku: &str) -> Result<pb::CatalogItem, Status> {
        let request = self.request(pb::GetCatalogItemRequest { sku: sku.into() });
        self.client.clone().get_catalog_item(request).await.map(tonic::Response::into_inner)
    }

    pub async fn list(&self, page_size: i32, page_token: &str) -> Result<pb::ListCatalogResponse, Status> {
        let request =
            self.request(pb::ListCatalogRequest { page_size, page_token: page_token.into(), include_inactive: false });
        self.client.clone().list_catalog(request).await.map(tonic::Response::into_inner)
    }

    pub async fn search(&self, query: &str, limit: i32) -> Result<Vec<pb::SearchMatch>, Status> {
        let request = self.request(pb::SearchCatalogRequest { query: query.into(), limit });
        self.client.clone().search_catalog(request).await.map(|r| r.into_inner().matches)
    }

    pub async fn stock(&self, skus: &[&str]) -> Result<Vec<pb::StockLevel>, Status> {
        let request = self.request(pb::GetStockRequest {
            skus: skus.iter().map(|s| s.to_string()).collect(),
            location: String::new(),
        });
        self.client.clone().get_stock(request).await.map(|r| r.into_inner().levels)
    }

    /// The stock level of one SKU, which must exist.
    pub async fn level(&self, sku: &str) -> pb::StockLevel {
        let mut levels = self.stock(&[sku]).await.expect("get stock");
        assert_eq!(levels.len(), 1, "one stock row for {sku}: {levels:?}");
        levels.remove(0)
    }

    pub async fn adjust(&self, adjustment: pb::AdjustStockRequest) -> Result<pb::StockLevel, Status> {
        let request = self.request(adjustment);
        self.client.clone().adjust_stock(request).await.map(tonic::Response::into_inner)
    }

    pub async fn set_threshold(&self, sku: &str, threshold: i64) -> Result<pb::StockLevel, Status> {
        let request =
            self.request(pb::SetLowStockThresholdRequest { sku: sku.into(), location: String::new(), threshold });
        self.client.clone().set_low_stock_threshold(request).await.map(tonic::Response::into_inner)
    }

    pub async fn update_settings(&self, currency: &str, threshold: i64) -> Result<pb::InventorySettings, Status> {
        let request = self.request(pb::UpdateSettingsRequest {
            settings: Some(pb::InventorySettings { default_low_stock_threshold: threshold, currency: currency.into() }),
        });
        self.client.clone().update_settings(request).await.map(tonic::Response::into_inner)
    }
}

pub fn reserve_item(sku: &str, quantity: i64) -> pb::ReserveItem {
    pb::ReserveItem { sku: sku.into(), quantity, location: String::new() }
}

pub fn money(amount_minor: i64, currency: &str) -> proto::common::v1::Money {
    proto::common::v1::Money { amount_minor, currency: currency.into() }
}

/// A catalog row priced in USD.
pub fn item(sku: &str, name: &str, price_minor: i64) -> pb::CatalogItemInput {
    pb::CatalogItemInput {
        sku: sku.into(),
        name: name.into(),
        price: Some(money(price_minor, "USD")),
        ..Default::default()
    }
}

pub fn adjustment(sku: &str, reason: pb::AdjustmentReason, delta: i64) -> pb::AdjustStockRequest {
    pb::AdjustStockRequest { sku: sku.into(), reason: reason as i32, delta, ..Default::default() }
}

pub fn received(sku: &str, quantity: i64) -> pb::AdjustStockRequest {
    adjustment(sku, pb::AdjustmentReason::Received, quantity)
}

pub fn counted(sku: &str, on_hand: i64) -> pb::AdjustStockRequest {
    pb::AdjustStockRequest {
        sku: sku.into(),
        reason: pb::AdjustmentReason::Counted as i32,
        counted_on_hand: on_hand,
        ..Default::default()
    }
}

/// Order lines as the order service sends them; `None` is an item not mapped to the catalog.
pub fn order_lines(items: &[(Option<&str>, i64)]) -> Vec<events::order::OrderLine> {
    items
        .iter()
        .map(|(sku, quantity)| events::order::OrderLine { sku: sku.map(str::to_string), quantity: *quantity })
        .collect()
}

/// `order.created` for an order whose stock is held already (`held`, a draft's approval) or not
/// (a TikTok Shop order).
pub fn order_created(
    order_id: &str,
    reference: &str,
    held: bool,
    items: &[(Option<&str>, i64)],
) -> events::order::OrderCreated {
    use events::order::OrderSource;
    events::order::OrderCreated {
        order_id: order_id.into(),
        order_code: format!("ORD-{order_id}"),
        source: if held { OrderSource::Draft } else { OrderSource::TiktokShop },
        source_id: format!("src-{order_id}"),
        status: "confirmed".into(),
        reservation_reference: reference.into(),
        reservation_held: held,
        items: order_lines(items),
        currency: "USD".into(),
        total_minor: 1000,
    }
}

pub fn order_status_changed(
    order_id: &str,
    reference: &str,
    from: &str,
    to: &str,
) -> events::order::OrderStatusChanged {
    events::order::OrderStatusChanged {
        order_id: order_id.into(),
        from: from.into(),
        to: to.into(),
        reason: None,
        version: 2,
        reservation_reference: reference.into(),
        items: Vec::new(),
    }
}

pub fn order_cancelled(order_id: &str, reference: &str) -> events::order::OrderCancelled {
    events::order::OrderCancelled {
        order_id: order_id.into(),
        reason: "customer changed their mind".into(),
        reservation_reference: reference.into(),
        items: Vec::new(),
    }
}

/// Asserts a gRPC failure's code, and that its message mentions each of `mentions`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: tonic::Code, mentions: &[&str]) -> Status {
    let status = match result {
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    for mention in mentions {
        assert!(status.message().contains(mention), "{:?} should mention {mention:?}", status.message());
    }
    status
}
