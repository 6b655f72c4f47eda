//! `spawn_app`: the order service in-process on its own database and bus namespace, a gRPC caller
//! per tenant and role, order creation the way the draft approval does it (CreateOrder with the
//! service role), the order stream as a subscriber sees it, and the inventory stream as inventory
//! publishes to it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bus::{Envelope, Namespace};
use order::domain::lifecycle::Status;
use proto::order::v1::order_service_client::OrderServiceClient;
use sqlx::PgPool;
use testkit::Role;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

pub use proto::common::v1::Money;
pub use proto::order::v1 as pb;

/// How long anything asynchronous (the relay, the consumer, the payment timeout) may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The durable consumer through which the order service reads inventory events.
pub const INVENTORY_CONSUMER: &str = order::inbound::inventory_events::CONSUMER;

pub struct TestApp {
    /// Holds the test database and namespace for as long as the app runs.
    env: testkit::TestEnv,
    pub namespace: Namespace,
    /// A superuser pool on the test database (the service's tables are in schema `orders`).
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

/// Starts the service and waits until its streams and its inventory consumer exist, so tests can
/// publish inventory events and read order events at once.
pub async fn spawn_app() -> TestApp {
    spawn_app_configured(|_| {}).await
}

/// [`spawn_app`], with the test's changes to the service's test configuration.
pub async fn spawn_app_configured(configure: impl FnOnce(&mut order::Config)) -> TestApp {
    let env = testkit::TestEnv::new().await;
    let token = CancellationToken::new();
    let mut config = order::Config::for_tests(env.common("order"));
    configure(&mut config);
    let app = order::startup::build(config, token.clone()).await.expect("order service starts");
    let grpc_addr = app.grpc_addr;
    let running = tokio::spawn(app.run_until_stopped());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    let jetstream = jetstream::new(async_nats::connect(testkit::nats_url()).await.expect("nats"));
    let namespace = Namespace::new(&env.namespace).expect("namespace");
    let admin = env.db.admin().await.expect("admin pool");
    let app = TestApp { env, namespace, admin, channel, jetstream, token, _running: running };
    testkit::eventually("the order stream and the inventory consumer exist", PATIENCE, || async {
        let order_stream = app.jetstream.get_stream(app.namespace.stream_name("order")).await.is_ok();
        match app.jetstream.get_stream(app.namespace.stream_name("inventory")).await {
            Ok(stream) => {
                order_stream
                    && stream.get_consumer::<jetstream::consumer::pull::Config>(INVENTORY_CONSUMER).await.is_ok()
            }
            Err(_) => false,
        }
    })
    .await;
    app
}

/// A tenant of its own; its tokens carry its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
}

impl Tenant {
    pub fn new() -> Self {
        Self { id: Uuid::new_v4() }
    }
}

/// The proto status of a lifecycle state, derived from the names so a new state needs no table.
pub fn pb_status(status: Status) -> pb::OrderStatus {
    let name = format!("ORDER_STATUS_{}", status.as_str().to_uppercase());
    pb::OrderStatus::from_str_name(&name).unwrap_or_else(|| panic!("the proto has no {name}"))
}

/// The lifecycle state of a proto status.
pub fn status_of(order: &pb::Order) -> Status {
    let name = pb::OrderStatus::try_from(order.status).expect("a known status").as_str_name();
    let name = name.strip_prefix("ORDER_STATUS_").expect("prefixed").to_lowercase();
    Status::parse(&name).unwrap_or_else(|| panic!("unknown status {name}"))
}

pub fn payment_status_of(order: &pb::Order) -> pb::PaymentStatus {
    pb::PaymentStatus::try_from(order.payment_status).expect("a known payment status")
}

/// The shortest way from `pending_payment` to `target` along the state machine.
pub fn path_to(target: Status) -> Vec<Status> {
    let mut paths = vec![vec![Status::PendingPayment]];
    loop {
        if let Some(path) = paths.iter().find(|p| p.last() == Some(&target)) {
            return path[1..].to_vec();
        }
        let longer: Vec<Vec<Status>> = paths
            .iter()
            .flat_map(|path| {
                let last = *path.last().expect("non-empty");
                last.next().iter().filter(|s| !path.contains(s)).map(|s| {
                    let mut longer = path.clone();
                    longer.push(*s);
                    longer
                })
            })
            .collect();
        assert!(!longer.is_empty(), "{target} cannot be reached from pending_payment");
        paths = longer;
    }
}

pub fn usd(amount_minor: i64) -> Money {
    Money { amount_minor, currency: "USD".into() }
}

pub fn money(amount_minor: i64, currency: &str) -> Money {
    Money { amount_minor, currency: currency.into() }
}

/// One line: SKU, unit price in USD minor units, quantity.
pub fn item(sku: &str, unit_minor: i64, quantity: i64) -> pb::OrderItem {
    pb::OrderItem {
        sku: sku.into(),
        name: format!("Item {sku}"),
        unit_price: Some(usd(unit_minor)),
        quantity,
        line_total: None,
    }
}

/// A CreateOrder request as the draft approval sends it: the draft id as the key, USD.
pub fn order_request(draft_id: &str, items: Vec<pb::OrderItem>) -> pb::CreateOrderRequest {
    pb::CreateOrderRequest {
        idempotency_key: draft_id.into(),
        items,
        customer: Some(pb::Customer { name: "Ada Obi".into(), ..Default::default() }),
        currency: "USD".into(),
        ..Default::default()
    }
}

pub fn address(country_code: &str) -> pb::Address {
    pb::Address {
        recipient_name: "Ada Obi".into(),
        line1: "12 Marina Road".into(),
        city: "Lagos".into(),
        country_code: country_code.into(),
        ..Default::default()
    }
}

/// Calls the API as one principal (or as nobody); every call carries the bearer token.
#[derive(Clone)]
pub struct Caller {
    client: OrderServiceClient<Channel>,
    token: Option<String>,
}

pub type Answer<T> = Result<T, tonic::Status>;

impl TestApp {
    pub fn caller(&self, tenant: &Tenant, role: Role) -> Caller {
        self.with_token(testkit::token(Some(tenant.id), role))
    }

    /// The draft service, calling CreateOrder for the tenant.
    pub fn service(&self, tenant: &Tenant) -> Caller {
        self.caller(tenant, Role::Service)
    }

    pub fn manager(&self, tenant: &Tenant) -> Caller {
        self.caller(tenant, Role::Manager)
    }

    pub fn agent(&self, tenant: &Tenant) -> Caller {
        self.caller(tenant, Role::Agent)
    }

    pub fn anonymous(&self) -> Caller {
        Caller { client: OrderServiceClient::new(self.channel.clone()), token: None }
    }

    /// A caller presenting exactly this token.
    pub fn with_token(&self, token: String) -> Caller {
        Caller { client: OrderServiceClient::new(self.channel.clone()), token: Some(token) }
    }

    /// Creates an order through CreateOrder with the service role, as the draft approval does.
    pub async fn create_order(&self, tenant: &Tenant, draft_id: &str, items: &[(&str, i64, i64)]) -> pb::Order {
        let items = items.iter().map(|(sku, unit, quantity)| item(sku, *unit, *quantity)).collect();
        self.service(tenant).create(order_request(draft_id, items)).await.expect("create order")
    }

    /// A fresh order moved (by a manager, through the API) to `target`.
    pub async fn order_in(&self, tenant: &Tenant, draft_id: &str, target: Status) -> pb::Order {
        let mut order = self.create_order(tenant, draft_id, &[("SKU-1", 1500, 2)]).await;
        let manager = self.manager(tenant);
        for step in path_to(target) {
            order = manager.move_to(&order.id, step).await.unwrap_or_else(|e| panic!("move to {step}: {e:?}"));
        }
        assert_eq!(status_of(&order), target);
        order
    }

    /// A pool as the service has it (its role, its schema), to drive its batch processors
    /// directly.
    /// The service's main pool, as its own role.
    pub fn service_pool(&self) -> PgPool {
        db::connect(&self.env.common("order").db).expect("service pool")
    }

    /// The service's group-commit connections, as `Commits::start` gets them.
    pub fn batch_connections(&self) -> db::BatchConnections {
        db::BatchConnections::new(db::connect_batches(&self.env.common("order").db).expect("batch pool"))
    }

    pub async fn admin_scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.admin).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Sets when an order was created (to age it past a payment window, or date it).
    pub async fn set_created_at(&self, order_ids: &[&str], created_at: time::OffsetDateTime) {
        let ids: Vec<Uuid> = order_ids.iter().map(|id| id.parse().expect("uuid")).collect();
        sqlx::query("UPDATE orders.orders SET created_at = $2 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(created_at)
            .execute(&self.admin)
            .await
            .expect("set created_at");
    }

    /// Waits until the outbox has published everything committed so far.
    pub async fn wait_outbox_drained(&self) {
        testkit::eventually("the outbox is drained", PATIENCE, || async {
            self.admin_scalar("SELECT count(*) FROM orders.outbox WHERE published_at IS NULL").await == 0
        })
        .await;
    }

    /// Every message in one of this app's streams, in order: subject, `Nats-Msg-Id`, envelope.
    pub async fn stream_messages(&self, domain: &str) -> Vec<(String, String, Envelope)> {
        let Ok(mut stream) = self.jetstream.get_stream(self.namespace.stream_name(domain)).await else {
            return Vec::new();
        };
        let last = stream.info().await.expect("stream info").state.last_sequence;
        let mut out = Vec::new();
        for sequence in 1..=last {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                let envelope: Envelope = serde_json::from_slice(&message.payload).expect("an envelope");
                let message_id =
                    message.headers.get(bus::header_names::MSG_ID).map(|v| v.as_str().to_string()).unwrap_or_default();
                out.push((message.subject.to_string(), message_id, envelope));
            }
        }
        out
    }

    /// The order events of type `T` published so far (after draining the outbox), in order.
    pub async fn order_events<T: bus::Event>(&self) -> Vec<(Envelope, T)> {
        self.wait_outbox_drained().await;
        self.stream_messages("order")
            .await
            .into_iter()
            .filter(|(_, _, envelope)| envelope.is::<T>())
            .map(|(_, _, envelope)| {
                let data = envelope.decode::<T>().expect("decodes");
                (envelope, data)
            })
            .collect()
    }

    /// Publishes an inventory event the way inventory's outbox relay does: the envelope as JSON
    /// on its subject, `Nats-Msg-Id` = the envelope id. Returns the untyped envelope.
    pub async fn publish_inventory_event<T: bus::Event>(&self, tenant: &Tenant, aggregate: &str, data: T) -> Envelope {
        let envelope = Envelope::new(tenant.id, aggregate, data, None);
        let subject = envelope.subject(&self.namespace);
        let envelope = envelope.into_untyped().expect("event as json");
        let message_id = envelope.id.to_string();
        self.publish_envelope(&subject, &envelope, &message_id).await;
        envelope
    }

    /// Publishes an envelope again under another `Nats-Msg-Id`: a redelivery the broker's
    /// de-duplication does not catch (after its window, or from a relay that lost its state).
    pub async fn redeliver(&self, envelope: &Envelope) {
        let (domain, name) = envelope.event_type.split_once('.').expect("type is domain.name");
        let subject = self.namespace.event_subject(domain, envelope.version, name, envelope.tenant_id);
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

    /// Waits until the order service's consumer has acknowledged everything in the inventory stream.
    pub async fn wait_inventory_events_handled(&self) {
        testkit::eventually("the order service acknowledged every inventory event", PATIENCE, || async {
            let Ok(mut stream) = self.jetstream.get_stream(self.namespace.stream_name("inventory")).await else {
                return false;
            };
            let Ok(last) = stream.info().await.map(|i| i.state.last_sequence) else { return false };
            let Ok(mut consumer) = stream.get_consumer::<jetstream::consumer::pull::Config>(INVENTORY_CONSUMER).await
            else {
                return false;
            };
            consumer
                .info()
                .await
                .is_ok_and(|i| i.ack_floor.stream_sequence >= last && i.num_ack_pending == 0 && i.num_pending == 0)
        })
        .await;
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

    pub async fn create(&self, request: pb::CreateOrderRequest) -> Answer<pb::Order> {
        self.client.clone().create_order(self.request(request)).await.map(|r| r.into_inner())
    }

    /// CreateOrders with `(on_behalf_of, order)` per entry; one outcome per entry.
    pub async fn create_many(
        &self,
        entries: Vec<(&str, pb::CreateOrderRequest)>,
    ) -> Answer<Vec<pb::create_orders_result::Outcome>> {
        let entries = entries
            .into_iter()
            .map(|(user, order)| pb::CreateOrdersEntry { order: Some(order), on_behalf_of: user.into() })
            .collect();
        let request = self.request(pb::CreateOrdersRequest { entries });
        let response = self.client.clone().create_orders(request).await?.into_inner();
        Ok(response.results.into_iter().map(|r| r.outcome.expect("every result has an outcome")).collect())
    }

    /// GetOrder by id or code.
    pub async fn get(&self, id: &str) -> Answer<pb::Order> {
        self.client.clone().get_order(self.request(pb::GetOrderRequest { id: id.into() })).await.map(|r| r.into_inner())
    }

    pub async fn list(&self, request: pb::ListOrdersRequest) -> Answer<pb::ListOrdersResponse> {
        self.client.clone().list_orders(self.request(request)).await.map(|r| r.into_inner())
    }

    /// Every order the filter matches, walking the pages; panics on an error.
    pub async fn list_all(&self, filter: pb::OrderFilter, sort: pb::SortBy, page_size: i32) -> Vec<pb::Order> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list(pb::ListOrdersRequest { filter: Some(filter.clone()), sort: sort as i32, page_size, page_token })
                .await
                .expect("list orders");
            assert!(page.orders.len() <= page_size as usize, "a page holds at most page_size orders");
            out.extend(page.orders);
            if page.next_page_token.is_empty() {
                return out;
            }
            page_token = page.next_page_token;
        }
    }

    pub async fn summary(&self, filter: pb::OrderFilter) -> Answer<pb::OrderSummaryResponse> {
        self.client
            .clone()
            .order_summary(self.request(pb::OrderSummaryRequest { filter: Some(filter) }))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn record(&self, order_id: &str, kind: pb::PaymentKind, amount: Money) -> Answer<pb::Order> {
        let request = pb::RecordPaymentRequest {
            order_id: order_id.into(),
            kind: kind as i32,
            amount: Some(amount),
            method: "bank_transfer".into(),
            reference: format!("ref-{}", Uuid::new_v4().simple()),
        };
        self.client.clone().record_payment(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn pay(&self, order_id: &str, amount: Money) -> Answer<pb::Order> {
        self.record(order_id, pb::PaymentKind::Payment, amount).await
    }

    pub async fn refund(&self, order_id: &str, amount: Money) -> Answer<pb::Order> {
        self.record(order_id, pb::PaymentKind::Refund, amount).await
    }

    pub async fn set_status(
        &self,
        order_id: &str,
        status: Status,
        reason: &str,
        expected_version: i64,
    ) -> Answer<pb::Order> {
        let request = pb::UpdateOrderStatusRequest {
            order_id: order_id.into(),
            status: pb_status(status) as i32,
            reason: reason.into(),
            expected_version,
            ..Default::default()
        };
        self.client.clone().update_order_status(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn cancel(&self, order_id: &str, reason: &str, expected_version: i64) -> Answer<pb::Order> {
        let request = pb::CancelOrderRequest { order_id: order_id.into(), reason: reason.into(), expected_version };
        self.client.clone().cancel_order(self.request(request)).await.map(|r| r.into_inner())
    }

    /// Requests a move the way a person does: CancelOrder for `cancelled`, UpdateOrderStatus else.
    pub async fn move_to(&self, order_id: &str, status: Status) -> Answer<pb::Order> {
        match status {
            Status::Cancelled => self.cancel(order_id, "customer asked", 0).await,
            other => self.set_status(order_id, other, "", 0).await,
        }
    }

    pub async fn bulk(&self, order_ids: &[&str], status: Status, reason: &str) -> Answer<Vec<pb::BulkResult>> {
        let request = pb::BulkUpdateOrderStatusRequest {
            order_ids: order_ids.iter().map(|s| s.to_string()).collect(),
            status: pb_status(status) as i32,
            reason: reason.into(),
        };
        self.client.clone().bulk_update_order_status(self.request(request)).await.map(|r| r.into_inner().results)
    }

    pub async fn update(&self, request: pb::UpdateOrderRequest) -> Answer<pb::Order> {
        self.client.clone().update_order(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn settings(&self) -> Answer<pb::OrderSettings> {
        self.client.clone().get_settings(self.request(pb::GetSettingsRequest {})).await.map(|r| r.into_inner())
    }

    pub async fn set_payment_window(&self, minutes: i64) -> Answer<pb::OrderSettings> {
        let settings = pb::OrderSettings { payment_window_minutes: minutes, ..Default::default() };
        self.client
            .clone()
            .update_settings(self.request(pb::UpdateSettingsRequest { settings: Some(settings) }))
            .await
            .map(|r| r.into_inner())
    }
}

/// How many calls [`Limited`] runs at once.
pub const CONCURRENCY: usize = 3;

/// Runs jobs at most [`CONCURRENCY`] at a time and collects their results (in completion order).
pub struct Limited<T> {
    jobs: JoinSet<T>,
    permits: Arc<Semaphore>,
}

impl<T: Send + 'static> Limited<T> {
    pub fn new() -> Self {
        Self { jobs: JoinSet::new(), permits: Arc::new(Semaphore::new(CONCURRENCY)) }
    }

    pub fn spawn(&mut self, job: impl Future<Output = T> + Send + 'static) {
        let permits = self.permits.clone();
        self.jobs.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore stays open");
            job.await
        });
    }

    pub async fn results(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.jobs.len());
        while let Some(result) = self.jobs.join_next().await {
            out.push(result.expect("job ran to completion"));
        }
        out
    }
}

/// Asserts a call failed with `code`; returns the status for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Answer<T>, code: tonic::Code, what: &str) -> tonic::Status {
    match result {
        Ok(value) => panic!("{what}: expected {code:?}, got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            status
        }
    }
}
