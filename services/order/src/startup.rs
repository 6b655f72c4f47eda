//! Assembles the order service: shared wiring, the gRPC API, the inventory-event consumer and
//! the payment timeout.

use std::sync::Arc;

use proto::order::v1::order_service_server::OrderServiceServer;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::inbound::grpc::OrderApi;
use crate::inbound::inventory_events::{self, InventoryEvents};

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
        consumer_metrics,
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

    let api = OrderApi { pool: wiring.pool.clone(), namespace, codes: Default::default() };
    let grpc = service_runtime::GrpcServer::new(proto::order::FILE_DESCRIPTOR_SET)?
        .add(OrderServiceServer::with_interceptor(api, wiring.auth()))
        .await;
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, axum::Router::new(), readiness)
}
