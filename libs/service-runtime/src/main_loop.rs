//! The body of every service's `main`: configuration, telemetry, signals, run, flush.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::{Application, CommonConfig, ServiceIdentity};

/// A service's configuration: the shared part plus its own settings.
pub trait ServiceConfig: Sized {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error>;
    fn common(&self) -> &CommonConfig;
}

/// Loads the configuration, runs `build`, serves until SIGTERM/SIGINT, drains, flushes telemetry.
pub fn run<C, B, Fut>(identity: ServiceIdentity, build: B) -> anyhow::Result<()>
where
    C: ServiceConfig,
    B: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<Application>>,
{
    failpoints::init_from_env();
    let env = settings::Env::from_process()?;
    let config = C::from_env(&env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The OTLP exporter's gRPC channel spawns its connection onto the runtime it is built in: built
    // outside one, a service with an endpoint configured panicked at start-up.
    let telemetry = {
        let _runtime = runtime.enter();
        telemetry::init(identity.name, config.common().log_format)?
    };
    let result = runtime.block_on(async move {
        let token = crate::install_signal_handler();
        let app = build(config, token).await?;
        app.run_until_stopped().await
    });
    if let Err(err) = &result {
        tracing::error!(error = format!("{err:#}"), "service stopped with an error");
    } else {
        tracing::info!("service stopped");
    }
    telemetry.shutdown();
    result
}
