//! Assembles the order service: shared wiring, the gRPC API, the inventory-event consumer and
//! the payment timeout.

use std::sync::Arc;

use proto::order::v1::order_service_server::OrderServiceServer;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::commits::Commits;
use crate::inbound::grpc::OrderApi;
use crate::inbound::inventory_events::{self, InventoryEvents};
use crate::inbound::tiktok_events::{self, TiktokEvents};
use crate::outbound::codes::OrderCodes;
use crate::outbound::tiktok_api::TiktokApi;
use crate::tiktok_sync::TiktokSync;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn build(config: Config, token: CancellationToken) -> anyhow::Result<service_runtime::Application> {
    let mut wiring = service_runtime::Wiring::start(crate::IDENTITY, &config.common, &MIGRATOR, token).await?;
    let namespace = config.common.bus.namespace.clone();

    let consumer_metrics = bus::consumer::ConsumerMetrics::default();
    consumer_metrics.register(&wiring.metrics);
    let spec = bus::ConsumerSpec {
        name: inventory_events::CONSUMER.into(),
        domain: "inventory",
        filter_subjects: inventory_events::filter_subjects(&namespace),
        lanes: 2,
    };
    let consumer = bus::consumer::run(
        wiring.bus.clone(),
        wiring.pool.clone(),
        spec,
        Arc::new(InventoryEvents),
        consumer_metrics.clone(),
        wiring.token(),
    );
    wiring.tasks.spawn("inventory events consumer", async move { Ok(consumer.await?) });

    let timeout = crate::payment_timeout::run(
        wiring.pool.clone(),
        namespace.clone(),
        config.payment_timeout_every,
        wiring.token(),
    );
    wiring.tasks.spawn("payment timeout", async move {
        timeout.await;
        Ok(())
    });

    let ingest = tonic::transport::Endpoint::from_shared(config.ingest_url.clone())?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(10))
        .connect_lazy();
    let tiktok = TiktokApi::new(
        &config.tiktok_api_base_url,
        config.tiktok_app_key.expose(),
        config.tiktok_app_secret.expose(),
        ingest,
        wiring.jwt.clone(),
        config.tiktok_retry,
        config.tiktok_breaker,
    );
    wiring.metrics.with_registry(|registry| tiktok.breaker.register_metrics(registry));
    let codes = Arc::new(OrderCodes::default());
    let notifications = bus::consumer::run(
        wiring.bus.clone(),
        wiring.pool.clone(),
        bus::ConsumerSpec {
            name: tiktok_events::CONSUMER.into(),
            domain: "ingest",
            filter_subjects: tiktok_events::filter_subjects(&namespace),
            lanes: 4,
        },
        Arc::new(TiktokEvents {
            namespace: namespace.clone(),
            api: tiktok.clone(),
            codes: codes.clone(),
            pool: wiring.pool.clone(),
        }),
        consumer_metrics,
        wiring.token(),
    );
    wiring.tasks.spawn("tiktok notifications consumer", async move { Ok(notifications.await?) });
    let sync = TiktokSync {
        pool: wiring.pool.clone(),
        api: tiktok,
        every: config.tiktok_sync_every,
        retry_base: config.tiktok_sync_retry_base,
    };
    let sync_token = wiring.token();
    wiring.tasks.spawn("tiktok sync", async move {
        sync.run(sync_token).await;
        Ok(())
    });

    let commits = Commits::start(
        &mut wiring.tasks,
        wiring.pool.clone(),
        wiring.batch_pool.clone(),
        namespace.clone(),
        codes,
        config.commits,
    );
    let api = OrderApi { pool: wiring.pool.clone(), namespace, commits };
    let grpc = service_runtime::GrpcServer::new(proto::order::FILE_DESCRIPTOR_SET)?
        .add(OrderServiceServer::with_interceptor(api, wiring.auth()))
        .await;
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, axum::Router::new(), readiness)
}
