//! Assembles the draft service: shared wiring, the review API, the message and catalog
//! consumers, the approval sweeper and the expiry scheduler.

use std::sync::Arc;

use proto::draft::v1::draft_service_server::DraftServiceServer;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::approve::{Approver, ApproverParts};
use crate::catalog_cache::CatalogCache;
use crate::domain::parser::{DeterministicParser, OrderParser};
use crate::inbound::catalog_events::{self, CatalogEvents};
use crate::inbound::grpc::DraftApi;
use crate::inbound::messages::{self, MessageEvents};
use crate::outbound::calls::Caller;
use crate::outbound::inventory::InventoryClient;
use crate::outbound::orders::OrderClient;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(10))
        .connect_lazy())
}

pub async fn build(config: Config, token: CancellationToken) -> anyhow::Result<service_runtime::Application> {
    let mut wiring = service_runtime::Wiring::start(crate::IDENTITY, &config.common, &MIGRATOR, token).await?;
    let namespace = config.common.bus.namespace.clone();

    let inventory_caller = Caller::new("inventory", wiring.jwt.clone(), config.calls_retry, config.calls_breaker);
    let order_caller = Caller::new("order", wiring.jwt.clone(), config.calls_retry, config.calls_breaker);
    wiring.metrics.with_registry(|registry| {
        inventory_caller.breaker.register_metrics(registry);
        order_caller.breaker.register_metrics(registry);
    });
    let inventory = InventoryClient::new(channel(&config.inventory_url)?, inventory_caller);
    let orders = OrderClient::new(channel(&config.order_url)?, order_caller);
    let catalog = CatalogCache::new(inventory.clone());
    let parser: Arc<dyn OrderParser> = Arc::new(DeterministicParser);

    let (approver, approval_workers) = Approver::new(ApproverParts {
        pool: wiring.pool.clone(),
        batch_pool: wiring.batch_pool.clone(),
        namespace: namespace.clone(),
        inventory,
        orders,
        lease: config.approval_lease,
        wait: config.approval_wait,
        committers: config.approval_committers,
        max_batch: config.approval_max_batch,
    });
    for worker in approval_workers {
        wiring.tasks.spawn("approval committer", async move {
            worker.await;
            Ok(())
        });
    }
    let sweeper = approver.clone().run_sweeper(config.sweep_every, wiring.token());
    wiring.tasks.spawn("approval sweeper", async move {
        sweeper.await;
        Ok(())
    });
    let expiry = crate::expire::run(wiring.pool.clone(), namespace.clone(), config.expiry_every, wiring.token());
    wiring.tasks.spawn("draft expiry", async move {
        expiry.await;
        Ok(())
    });

    let consumer_metrics = bus::consumer::ConsumerMetrics::default();
    consumer_metrics.register(&wiring.metrics);
    let messages = bus::consumer::run_batched(
        wiring.bus.clone(),
        wiring.pool.clone(),
        bus::ConsumerSpec {
            name: messages::CONSUMER.into(),
            domain: "ingest",
            filter_subjects: messages::filter_subjects(&namespace),
            lanes: config.message_lanes,
        },
        config.message_max_batch,
        Arc::new(MessageEvents {
            namespace: namespace.clone(),
            catalog: catalog.clone(),
            parser: parser.clone(),
            resend_window: std::time::Duration::from_secs(300),
        }),
        consumer_metrics.clone(),
        wiring.token(),
    );
    wiring.tasks.spawn("message consumer", async move { Ok(messages.await?) });
    let catalog_changes = bus::consumer::run(
        wiring.bus.clone(),
        wiring.pool.clone(),
        bus::ConsumerSpec {
            name: catalog_events::CONSUMER.into(),
            domain: "inventory",
            filter_subjects: catalog_events::filter_subjects(&namespace),
            lanes: 1,
        },
        Arc::new(CatalogEvents { cache: catalog.clone() }),
        consumer_metrics,
        wiring.token(),
    );
    wiring.tasks.spawn("catalog consumer", async move { Ok(catalog_changes.await?) });

    let api = DraftApi { pool: wiring.pool.clone(), namespace, catalog, parser, approver };
    let grpc = service_runtime::GrpcServer::new(proto::draft::FILE_DESCRIPTOR_SET)?
        .add(DraftServiceServer::with_interceptor(api, wiring.auth()))
        .await;
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, axum::Router::new(), readiness)
}
