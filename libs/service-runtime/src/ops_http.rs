//! `/healthz` (alive), `/readyz` (dependencies reachable) and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One named readiness check.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What must be reachable for the service to take traffic.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, ReadinessCheck, Required)>,
}

/// Whether a failing check makes the service not ready, or is only reported.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Yes,
    ReportOnly,
}

impl Readiness {
    pub fn with(mut self, name: &'static str, check: ReadinessCheck, required: Required) -> Self {
        self.checks.push((name, check, required));
        self
    }

    /// Postgres answers a trivial query.
    pub fn postgres(self, pool: sqlx::PgPool) -> Self {
        self.with(
            "postgres",
            Arc::new(move || {
                let pool = pool.clone();
                Box::pin(
                    async move { sqlx::query("SELECT 1").execute(&pool).await.map(|_| ()).map_err(|e| e.to_string()) },
                )
            }),
            Required::Yes,
        )
    }

    /// The NATS connection is up (`required`: whether its loss makes the service not ready).
    pub fn nats(self, client: async_nats::Client, required: Required) -> Self {
        self.with(
            "nats",
            Arc::new(move || {
                let state = client.connection_state();
                Box::pin(async move {
                    match state {
                        async_nats::connection::State::Connected => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                })
            }),
            required,
        )
    }

    async fn evaluate(&self) -> (bool, serde_json::Value) {
        let mut report = serde_json::Map::new();
        let mut ready = true;
        for (name, check, required) in &self.checks {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), check()).await;
            let status = match outcome {
                Ok(Ok(())) => "ok".to_string(),
                Ok(Err(err)) => {
                    ready &= *required == Required::ReportOnly;
                    tracing::debug!(check = name, error = %err, "readiness check failed");
                    "unavailable".to_string()
                }
                Err(_) => {
                    ready &= *required == Required::ReportOnly;
                    "timed out".to_string()
                }
            };
            report.insert((*name).to_string(), serde_json::Value::String(status));
        }
        (ready, serde_json::Value::Object(report))
    }
}

#[derive(Clone)]
struct OpsState {
    metrics: telemetry::Metrics,
    readiness: Readiness,
}

/// The ops endpoints; a service merges its own routes (ingest's webhooks) into this router.
pub fn ops_router(metrics: telemetry::Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { metrics, readiness })
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let (ready, report) = state.readiness.evaluate().await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report))
}

async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}

/// Serves `router` until `token` is cancelled, then finishes in-flight requests.
pub async fn serve_http(listener: TcpListener, router: Router, token: CancellationToken) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to small responses.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(async move { token.cancelled().await }).await?;
    Ok(())
}
