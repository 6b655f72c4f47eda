//! The gRPC server every service runs: its API plus `grpc.health.v1` and server reflection.
//!
//! Reflection is served in both v1 and v1alpha: the grpcurl that PyPI bundles and Python's
//! grpcio-reflection speak only v1alpha.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::{Router, TcpIncoming};
use tonic_health::ServingStatus;

/// A gRPC server with health and reflection already added; add the service's API to it.
pub struct GrpcServer {
    pub router: Router,
    pub health: tonic_health::server::HealthReporter,
    services: Vec<&'static str>,
}

impl GrpcServer {
    /// `descriptor_set`: the service's own protos (`proto::<service>::FILE_DESCRIPTOR_SET`).
    pub fn new(descriptor_set: &'static [u8]) -> anyhow::Result<Self> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let router = tonic::transport::Server::builder()
            .trace_fn(|request: &http::Request<()>| {
                let span = tracing::info_span!("grpc", path = %request.uri().path());
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .filter(|(name, _)| matches!(name.as_str(), "traceparent" | "tracestate"))
                    .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
                    .collect();
                telemetry::propagation::set_parent(&span, &headers);
                span
            })
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        Ok(Self { router, health, services: Vec::new() })
    }

    /// Adds an API service and marks it SERVING in `grpc.health.v1`.
    pub async fn add<S>(mut self, service: S) -> Self
    where
        S: tonic::server::NamedService
            + tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.health.set_service_status(S::NAME, ServingStatus::Serving).await;
        self.services.push(S::NAME);
        self.router = self.router.add_service(service);
        self
    }
}

/// Serves until `token` is cancelled, then lets in-flight calls finish.
pub async fn serve_grpc(listener: TcpListener, server: GrpcServer, token: CancellationToken) -> anyhow::Result<()> {
    let health = server.health.clone();
    let services = server.services.clone();
    let shutdown = async move {
        token.cancelled().await;
        // Tell load balancers first, then stop accepting.
        health.set_service_status("", ServingStatus::NotServing).await;
        for service in services {
            health.set_service_status(service, ServingStatus::NotServing).await;
        }
    };
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to small responses.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    server.router.serve_with_incoming_shutdown(incoming, shutdown).await?;
    Ok(())
}

/// A database failure as a gRPC status, for every API: the detail goes to the log, never to
/// the caller.
pub fn db_status(err: &db::DbError) -> tonic::Status {
    match err {
        db::DbError::Unavailable(detail) => {
            tracing::warn!(%detail, "database unavailable");
            tonic::Status::unavailable("temporarily unavailable; retry")
        }
        db::DbError::Internal(detail) => {
            tracing::error!(%detail, "database error");
            tonic::Status::internal("internal error")
        }
    }
}
