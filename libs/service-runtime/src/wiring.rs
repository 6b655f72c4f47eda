//! The start-up every service shares: listeners, database, bus, outbox relay, NATS micro, ops
//! endpoints and the gRPC server. A service adds its domain (gRPC API, consumers, schedulers).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{CommonConfig, GrpcServer, Readiness, ServiceIdentity, Tasks};

/// A service being assembled: its resources are ready, nothing serves yet.
pub struct Wiring {
    pub identity: ServiceIdentity,
    pub pool: sqlx::PgPool,
    /// Connections for group-commit batches (`db::BatchConnections`), planned once per statement.
    pub batch_pool: sqlx::PgPool,
    pub bus: bus::Bus,
    pub metrics: telemetry::Metrics,
    pub jwt: auth::JwtKeys,
    pub tasks: Tasks,
    http: TcpListener,
    grpc: TcpListener,
    shutdown_deadline: Duration,
}

impl Wiring {
    /// Binds the listeners (port 0 in tests), migrates the schema (bus tables, then the
    /// service's), connects to NATS (in the background if it is down) and starts the relay.
    pub async fn start(
        identity: ServiceIdentity,
        config: &CommonConfig,
        migrator: &sqlx::migrate::Migrator,
        token: CancellationToken,
    ) -> anyhow::Result<Self> {
        let http = TcpListener::bind(config.http_addr).await?;
        let grpc = TcpListener::bind(config.grpc_addr).await?;
        let pool = db::connect(&config.db)?;
        let batch_pool = db::connect_batches(&config.db)?;
        db::migrate(&pool, &bus::MIGRATOR).await.map_err(|e| anyhow::anyhow!("migrate bus tables: {e}"))?;
        db::migrate(&pool, migrator).await.map_err(|e| anyhow::anyhow!("migrate {} schema: {e}", identity.name))?;
        let bus = bus::Bus::connect(config.bus.clone(), identity.name).await?;
        let metrics = telemetry::Metrics::new(identity.name);
        let mut tasks = Tasks::new(token.clone());

        let relay_metrics = bus::outbox::RelayMetrics::default();
        relay_metrics.register(&metrics);
        let relay = bus::outbox::Relay::new(pool.clone(), bus.clone(), relay_metrics);
        let relay_token = token.clone();
        tasks.spawn("outbox relay", async move {
            relay.run(relay_token).await;
            Ok(())
        });
        let micro_client = bus.client().clone();
        let micro_token = token.clone();
        let namespace = config.bus.namespace.as_str().to_string();
        tasks.spawn("nats micro", crate::register_micro_service(micro_client, identity, namespace, micro_token));

        Ok(Self {
            identity,
            pool,
            batch_pool,
            bus,
            metrics,
            jwt: auth::JwtKeys::new(config.jwt_secret.expose().as_bytes()),
            tasks,
            http,
            grpc,
            shutdown_deadline: config.shutdown_deadline,
        })
    }

    pub fn token(&self) -> CancellationToken {
        self.tasks.token()
    }

    /// The interceptor for the service's gRPC API.
    pub fn auth(&self) -> auth::grpc::AuthInterceptor {
        auth::grpc::AuthInterceptor::new(self.jwt.clone())
    }

    /// Readiness: Postgres reachable. NATS is reported but not required: every event waits in
    /// the outbox during a NATS outage, so the service keeps taking requests.
    pub fn default_readiness(&self) -> Readiness {
        Readiness::default().postgres(self.pool.clone()).nats(self.bus.client().clone(), crate::Required::ReportOnly)
    }

    /// Starts serving HTTP (ops endpoints plus `routes`) and gRPC.
    pub fn serve(
        mut self,
        grpc: GrpcServer,
        routes: axum::Router,
        readiness: Readiness,
    ) -> anyhow::Result<Application> {
        let http_addr = self.http.local_addr()?;
        let grpc_addr = self.grpc.local_addr()?;
        let router = routes.merge(crate::ops_router(self.metrics.clone(), readiness));
        let token = self.tasks.token();
        self.tasks.spawn("http", crate::serve_http(self.http, router, token.clone()));
        self.tasks.spawn("grpc", crate::serve_grpc(self.grpc, grpc, token));
        tracing::info!(service = self.identity.name, %http_addr, %grpc_addr, "serving");
        Ok(Application { http_addr, grpc_addr, tasks: self.tasks, shutdown_deadline: self.shutdown_deadline })
    }
}

/// A running service.
pub struct Application {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    tasks: Tasks,
    shutdown_deadline: Duration,
}

impl Application {
    pub fn token(&self) -> CancellationToken {
        self.tasks.token()
    }

    /// Runs until the token is cancelled (a signal, or a task failing), then drains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.tasks.run_until_stopped(self.shutdown_deadline).await
    }
}
