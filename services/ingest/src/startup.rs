//! Assembles the ingest service: shared wiring, the webhook endpoints, the channel registry API
//! and the housekeeping that prunes the archive and old de-duplication records.

use std::time::Duration;

use proto::ingest::v1::channel_service_server::ChannelServiceServer;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::accept::Acceptor;
use crate::domain::signature::AppSecrets;
use crate::inbound::channels_grpc::ChannelApi;
use crate::inbound::webhooks_http::{self, WebhookState};
use crate::metrics::IngestMetrics;
use crate::outbound::channels::ChannelRepository;
use crate::outbound::credentials::CredentialSealer;
use crate::outbound::tiktok_auth::TiktokAuthClient;
use crate::outbound::webhooks;
use crate::token_refresh::TokenRefresher;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn build(config: Config, token: CancellationToken) -> anyhow::Result<service_runtime::Application> {
    let sealer =
        CredentialSealer::with_previous(config.credentials_key.expose(), config.credentials_key_previous.expose())
            .map_err(|e| anyhow::anyhow!("ORDERFLOW_CREDENTIALS_KEY or ORDERFLOW_CREDENTIALS_KEY_PREVIOUS: {e}"))?;
    let mut wiring = service_runtime::Wiring::start(crate::IDENTITY, &config.common, &MIGRATOR, token).await?;
    let metrics = IngestMetrics::register(&wiring.metrics);
    let acceptor = Acceptor::start(
        &mut wiring.tasks,
        wiring.pool.clone(),
        config.common.bus.namespace.clone(),
        config.committers,
        config.max_batch,
        metrics.clone(),
    );

    let breaker = resilience::CircuitBreaker::new("tiktok-auth", config.tiktok_breaker);
    wiring.metrics.with_registry(|registry| breaker.register_metrics(registry));
    let refresher = TokenRefresher {
        pool: wiring.pool.clone(),
        sealer: sealer.clone(),
        client: TiktokAuthClient::new(
            &config.tiktok_auth_base_url,
            config.tiktok_app_key.expose(),
            config.tiktok_app_secret.expose(),
            config.tiktok_retry,
            breaker,
        ),
        ahead: config.token_refresh_ahead,
        every: config.token_refresh_every,
    };
    let refresher_token = wiring.token();
    wiring.tasks.spawn("tiktok token refresh", async move {
        refresher.run(refresher_token).await;
        Ok(())
    });

    let (channels, resealer, reseal_token) =
        (ChannelRepository::new(wiring.pool.clone()), sealer.clone(), wiring.token());
    wiring.tasks.spawn("credentials re-seal", async move {
        crate::reseal::run(channels, resealer, reseal_token).await;
        Ok(())
    });
    let channel_api = ChannelApi { channels: ChannelRepository::new(wiring.pool.clone()), sealer };
    let grpc = service_runtime::GrpcServer::new(proto::ingest::FILE_DESCRIPTOR_SET)?
        .add(ChannelServiceServer::with_interceptor(channel_api, wiring.auth()))
        .await;

    let routes = webhooks_http::router(
        WebhookState {
            acceptor,
            metrics,
            meta_secrets: AppSecrets::new(config.meta_app_secret.expose(), config.meta_app_secret_previous.expose()),
            meta_verify_token: config.meta_verify_token.expose().to_string(),
            tiktok_app_key: config.tiktok_app_key.expose().to_string(),
            tiktok_secrets: AppSecrets::new(
                config.tiktok_app_secret.expose(),
                config.tiktok_app_secret_previous.expose(),
            ),
        },
        config.max_body_bytes,
    );

    let pool = wiring.pool.clone();
    let housekeeping_token = wiring.token();
    let (archive, dedupe, every) = (config.archive_retention, config.dedupe_retention, config.housekeeping_every);
    wiring.tasks.spawn("ingest housekeeping", async move {
        housekeeping(pool, archive, dedupe, every, housekeeping_token).await;
        Ok(())
    });

    // Ready when Postgres is: webhooks are stored first, so a NATS outage must not take ingest
    // out of the load balancer.
    let readiness = wiring.default_readiness();
    wiring.serve(grpc, routes, readiness)
}

async fn housekeeping(
    pool: sqlx::PgPool,
    archive: Duration,
    dedupe: Duration,
    every: Duration,
    token: CancellationToken,
) {
    loop {
        match webhooks::prune(&pool, archive, dedupe).await {
            Ok((0, 0)) => {}
            Ok((archived, dedupe)) => {
                tracing::info!(archived, dedupe, "pruned webhook archive and de-duplication records")
            }
            Err(err) => {
                tracing::warn!(error = %err, "pruning the webhook archive failed; will retry")
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
