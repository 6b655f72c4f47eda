//! Assembles the order service: shared wiring plus this service's API, consumers and schedulers.

use tokio_util::sync::CancellationToken;

use crate::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn build(config: Config, token: CancellationToken) -> anyhow::Result<service_runtime::Application> {
    let wiring = service_runtime::Wiring::start(crate::IDENTITY, &config.common, &MIGRATOR, token).await?;
    let grpc = service_runtime::GrpcServer::new(proto::order::FILE_DESCRIPTOR_SET)?;
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, axum::Router::new(), readiness)
}
