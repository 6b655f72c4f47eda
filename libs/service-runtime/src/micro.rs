//! Registers the service with the NATS service API, so `nats micro ls|info|stats` show it.

use async_nats::service::ServiceExt;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::ServiceIdentity;

/// Runs the micro service (a `status` endpoint answering with identity and uptime) until `token`
/// is cancelled. NATS being down only delays registration; it never stops the service.
pub async fn register_micro_service(
    client: async_nats::Client,
    identity: ServiceIdentity,
    namespace: String,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let service = loop {
        let attempt = client
            .service_builder()
            .description(identity.description)
            // Several deployments (or test runs) can share one NATS; the namespace tells them apart.
            .metadata(std::collections::HashMap::from([("namespace".to_string(), namespace.clone())]))
            .start(format!("orderflow-{}", identity.name), identity.version)
            .await;
        match attempt {
            Ok(service) => break service,
            Err(err) => {
                tracing::debug!(error = %err, "NATS micro registration failed; retrying");
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
    };
    // `ops.<service>.status`: outside every stream's subjects, so requests are never stored.
    let mut status = service
        .group(format!("ops.{}", identity.name))
        .endpoint("status")
        .await
        .map_err(|err| anyhow::anyhow!("add status endpoint: {err}"))?;
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            request = status.next() => {
                let Some(request) = request else { break };
                let body = serde_json::json!({
                    "service": identity.name,
                    "version": identity.version,
                    "namespace": namespace,
                    "uptime_seconds": started.elapsed().as_secs(),
                });
                if let Err(err) = request.respond(Ok(body.to_string().into())).await {
                    tracing::debug!(error = %err, "micro status reply failed");
                }
            }
        }
    }
    let _ = service.stop().await;
    Ok(())
}
