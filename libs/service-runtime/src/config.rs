//! The settings every service shares, and the one table of ports.

use std::net::SocketAddr;
use std::time::Duration;

use settings::{Env, Secret};

/// `(service, ops HTTP port, gRPC port)`. Ingest's HTTP port also takes the webhooks.
pub const PORTS: &[(&str, u16, u16)] = &[
    ("ingest", 8080, 50050),
    ("draft", 8081, 50051),
    ("order", 8082, 50052),
    ("inventory", 8083, 50053),
    ("shipping", 8084, 50054),
    ("notifier", 8085, 50055),
];

#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub service: &'static str,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub db: db::DbConfig,
    pub bus: bus::BusConfig,
    pub jwt_secret: Secret,
    pub log_format: telemetry::LogFormat,
    /// How long in-flight work may take to finish after a shutdown signal.
    pub shutdown_deadline: Duration,
}

impl CommonConfig {
    pub fn from_env(env: &Env, service: &'static str) -> Result<Self, settings::Error> {
        let (_, http_port, grpc_port) = PORTS.iter().copied().find(|(name, ..)| *name == service).ok_or_else(|| {
            settings::Error::Invalid { key: "service".into(), reason: format!("unknown service {service}") }
        })?;
        let service_db = db::ServiceDb::lookup(service).ok_or_else(|| settings::Error::Invalid {
            key: "service".into(),
            reason: format!("no schema for {service}"),
        })?;
        Ok(Self {
            service,
            http_addr: env.get("ORDERFLOW_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], http_port)))?,
            grpc_addr: env.get("ORDERFLOW_GRPC_ADDR", SocketAddr::from(([127, 0, 0, 1], grpc_port)))?,
            db: db::DbConfig::from_env(env, &service_db)?,
            bus: bus::BusConfig::from_env(env)?,
            jwt_secret: env.secret(auth::JWT_SECRET_VAR, auth::DEV_JWT_SECRET)?,
            log_format: env.get("ORDERFLOW_LOG_FORMAT", telemetry::LogFormat::Json)?,
            shutdown_deadline: env.millis("ORDERFLOW_SHUTDOWN_DEADLINE_MS", Duration::from_secs(20))?,
        })
    }

    /// For in-process tests: port 0, the given database and bus namespace, fast timings.
    pub fn for_tests(service: &'static str, database_url: &str, nats_url: &str, namespace: &str) -> Self {
        let env = Env::from_lookup(|_| None).expect("empty environment is valid");
        let mut config = Self::from_env(&env, service).expect("defaults are valid");
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.db.url = Secret::new(database_url);
        config.db.max_connections = 8;
        let namespace = bus::Namespace::new(namespace).expect("test namespace is valid");
        config.bus = bus::BusConfig::for_tests(nats_url, namespace);
        config.shutdown_deadline = Duration::from_secs(5);
        config
    }
}
