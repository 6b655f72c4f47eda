//! Assembles the inventory service: shared wiring, the gRPC API with its reservation group
//! commit, and the consumer of order events.

use std::sync::Arc;

use proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::inbound::grpc::InventoryApi;
use crate::inbound::order_events::{self, OrderEvents};
use crate::reserve::{ReserveBatches, Reserver};
use crate::search::SearchCache;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn build(config: Config, token: CancellationToken) -> anyhow::Result<service_runtime::Application> {
    let mut wiring = service_runtime::Wiring::start(crate::IDENTITY, &config.common, &MIGRATOR, token).await?;
    let namespace = config.common.bus.namespace.clone();

    let batches = ReserveBatches {
        connections: db::BatchConnections::new(wiring.batch_pool.clone()),
        namespace: namespace.clone(),
    };
    let (reserver, workers) = Reserver::new(batches, config.reserve_committers, config.reserve_max_batch);
    for worker in workers {
        wiring.tasks.spawn("reservation committer", async move {
            worker.await;
            Ok(())
        });
    }

    let consumer_metrics = bus::consumer::ConsumerMetrics::default();
    consumer_metrics.register(&wiring.metrics);
    let spec = bus::ConsumerSpec {
        name: order_events::CONSUMER.into(),
        domain: "order",
        filter_subjects: order_events::filter_subjects(&namespace),
        lanes: 4,
    };
    let consumer = bus::consumer::run_batched(
        wiring.bus.clone(),
        wiring.pool.clone(),
        spec,
        config.consumer_max_batch,
        // Lane batches in one transaction: each order's creation would otherwise cost a commit here.
        Arc::new(bus::consumer::OneAtATime(Arc::new(OrderEvents { namespace: namespace.clone() }))),
        consumer_metrics,
        wiring.token(),
    );
    wiring.tasks.spawn("order events consumer", async move { Ok(consumer.await?) });

    let api = InventoryApi { pool: wiring.pool.clone(), namespace, reserver, search: SearchCache::default() };
    let grpc = service_runtime::GrpcServer::new(proto::inventory::FILE_DESCRIPTOR_SET)?
        .add(InventoryServiceServer::with_interceptor(api, wiring.auth()))
        .await;
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, axum::Router::new(), readiness)
}
