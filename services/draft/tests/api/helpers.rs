//! The system around the draft service, in-process: inventory, order and draft (and ingest for
//! end-to-end tests) on one test database (each in its own schema) and one bus namespace.

use std::time::Duration;

use proto::common::v1::Money;
use proto::draft::v1 as pb;
use proto::draft::v1::draft_service_client::DraftServiceClient;
use proto::inventory::v1 as inv;
use proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use proto::order::v1 as ord;
use proto::order::v1::order_service_client::OrderServiceClient;
use testkit::Role;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A catalog item to seed: (sku, name, attributes, price, stock).
pub type CatalogItem<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], i64, i64);

pub struct System {
    pub env: testkit::TestEnv,
    pub tenant: Uuid,
    pub draft_url: String,
    pub inventory_url: String,
    pub order_url: String,
    pub ingest_http: Option<String>,
    pub ingest_grpc: Option<String>,
    tokens: Vec<CancellationToken>,
}

impl Drop for System {
    fn drop(&mut self) {
        for token in &self.tokens {
            token.cancel();
        }
    }
}

async fn run(app: service_runtime::Application) -> (String, String, CancellationToken) {
    let token = app.token();
    let http = format!("http://{}", app.http_addr);
    let grpc = format!("http://{}", app.grpc_addr);
    tokio::spawn(app.run_until_stopped());
    (http, grpc, token)
}

/// Inventory and order, without a draft service (tests that spawn the real draft binary).
pub async fn spawn_dependencies(env: testkit::TestEnv) -> System {
    let (_, inventory_url, inventory_token) =
        run(inventory::startup::build(inventory::Config::for_tests(env.common("inventory")), CancellationToken::new())
            .await
            .expect("inventory"))
        .await;
    let (_, order_url, order_token) =
        run(order::startup::build(order::Config::for_tests(env.common("order")), CancellationToken::new())
            .await
            .expect("order"))
        .await;
    System {
        env,
        tenant: Uuid::new_v4(),
        draft_url: String::new(),
        inventory_url,
        order_url,
        ingest_http: None,
        ingest_grpc: None,
        tokens: vec![inventory_token, order_token],
    }
}

pub async fn spawn_system() -> System {
    spawn_system_with(false).await
}

pub async fn spawn_system_with(with_ingest: bool) -> System {
    spawn_system_configured(with_ingest, |_| {}).await
}

/// The system with the draft service's test configuration changed by `adjust`.
pub async fn spawn_system_configured(with_ingest: bool, adjust: impl FnOnce(&mut draft::Config)) -> System {
    let mut system = spawn_dependencies(testkit::TestEnv::new().await).await;
    let mut config = draft::Config::for_tests(system.env.common("draft"), &system.inventory_url, &system.order_url);
    adjust(&mut config);
    let (_, draft_url, draft_token) =
        run(draft::startup::build(config, CancellationToken::new()).await.expect("draft")).await;
    system.draft_url = draft_url;
    system.tokens.push(draft_token);
    if with_ingest {
        let config = ingest::Config::for_tests(system.env.common("ingest"));
        let (http, grpc, token) =
            run(ingest::startup::build(config, CancellationToken::new()).await.expect("ingest")).await;
        system.ingest_http = Some(http);
        system.ingest_grpc = Some(grpc);
        system.tokens.push(token);
    }
    system
}

pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    auth::grpc::with_bearer(tonic::Request::new(message), token).expect("token")
}

pub fn usd(amount_minor: i64) -> Money {
    Money { amount_minor, currency: "USD".into() }
}

impl System {
    pub fn token(&self, role: Role) -> String {
        testkit::token(Some(self.tenant), role)
    }

    pub async fn drafts(&self) -> DraftServiceClient<tonic::transport::Channel> {
        DraftServiceClient::connect(self.draft_url.clone()).await.expect("draft grpc")
    }

    pub async fn inventory(&self) -> InventoryServiceClient<tonic::transport::Channel> {
        InventoryServiceClient::connect(self.inventory_url.clone()).await.expect("inventory grpc")
    }

    pub async fn orders(&self) -> OrderServiceClient<tonic::transport::Channel> {
        OrderServiceClient::connect(self.order_url.clone()).await.expect("order grpc")
    }

    /// A small catalog: (sku, name, attributes, price, stock).
    pub async fn seed_catalog(&self, items: &[CatalogItem<'_>]) {
        let manager = self.token(Role::Manager);
        let mut inventory = self.inventory().await;
        let inputs = items
            .iter()
            .map(|(sku, name, attributes, price, _)| inv::CatalogItemInput {
                sku: sku.to_string(),
                name: name.to_string(),
                attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                price: Some(usd(*price)),
                active: Some(true),
                retailer_id: format!("wa-{}", sku.to_lowercase()),
                product_id: String::new(),
            })
            .collect();
        let response = inventory
            .upsert_catalog(authorized(inv::UpsertCatalogRequest { items: inputs, skip_invalid: false }, &manager))
            .await
            .expect("upsert catalog")
            .into_inner();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        for (sku, _, _, _, stock) in items {
            if *stock > 0 {
                inventory
                    .adjust_stock(authorized(
                        inv::AdjustStockRequest {
                            sku: sku.to_string(),
                            reason: inv::AdjustmentReason::Received as i32,
                            delta: *stock,
                            ..Default::default()
                        },
                        &manager,
                    ))
                    .await
                    .expect("stock");
            }
        }
    }

    pub async fn seed_default_catalog(&self) {
        self.seed_catalog(&[
            ("HOOP-G-7", "Gold Hoop Earrings", &[("size", "7")], 1299, 50),
            ("HOOP-G-8", "Gold Hoop Earrings", &[("size", "8")], 1399, 50),
            ("CHAIN-S", "Silver Chain Necklace", &[], 3000, 20),
            ("BRACE-B", "Beaded Bracelet", &[], 800, 5),
        ])
        .await;
    }

    pub async fn stock(&self, sku: &str) -> inv::StockLevel {
        let mut inventory = self.inventory().await;
        let levels = inventory
            .get_stock(authorized(
                inv::GetStockRequest { skus: vec![sku.into()], location: String::new() },
                &self.token(Role::Viewer),
            ))
            .await
            .expect("stock")
            .into_inner()
            .levels;
        levels.into_iter().next().expect("a stock row")
    }

    pub async fn create_draft(&self, items: &[(&str, i64)]) -> pb::Draft {
        let request = pb::CreateDraftRequest {
            customer: Some(pb::Customer {
                name: "Ada".into(),
                phone_e164: "+2348012345678".into(),
                ..Default::default()
            }),
            items: items
                .iter()
                .map(|(sku, quantity)| pb::ItemInput { sku: sku.to_string(), quantity: *quantity, text: String::new() })
                .collect(),
            ..Default::default()
        };
        self.drafts()
            .await
            .create_draft(authorized(request, &self.token(Role::Agent)))
            .await
            .expect("create draft")
            .into_inner()
    }

    pub async fn approve(&self, id: &str) -> Result<pb::ApproveDraftResponse, tonic::Status> {
        self.drafts()
            .await
            .approve_draft(authorized(pb::ApproveDraftRequest { id: id.into() }, &self.token(Role::Agent)))
            .await
            .map(|r| r.into_inner())
    }

    /// The `draft.approved` events the draft service wrote for a draft (its outbox), as JSON.
    pub async fn approved_events(&self, draft_id: &str) -> Vec<serde_json::Value> {
        let pool = self.env.db.admin().await.expect("admin");
        let payloads: Vec<String> = sqlx::query_scalar(
            "SELECT payload FROM draft.outbox WHERE subject LIKE '%.draft.v1.approved.%' AND partition_key = $1",
        )
        .bind(format!("draft:{draft_id}"))
        .fetch_all(&pool)
        .await
        .expect("outbox");
        payloads.iter().map(|p| serde_json::from_str(p).expect("envelope")).collect()
    }

    pub async fn get_draft(&self, id: &str) -> pb::Draft {
        self.drafts()
            .await
            .get_draft(authorized(pb::GetDraftRequest { id: id.into() }, &self.token(Role::Viewer)))
            .await
            .expect("get")
            .into_inner()
    }

    pub async fn list_orders(&self) -> Vec<ord::Order> {
        self.orders()
            .await
            .list_orders(authorized(
                ord::ListOrdersRequest { page_size: 500, ..Default::default() },
                &self.token(Role::Viewer),
            ))
            .await
            .expect("list orders")
            .into_inner()
            .orders
    }
}

pub const WAIT: Duration = Duration::from_secs(20);
