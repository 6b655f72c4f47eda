//! Pushes changes made here to TikTok Shop (cancellations; shipments with tracking) in the
//! background, through the shared retry policy and circuit breaker. A failure never blocks the
//! local change: the row stays `failed` with its last error and is retried with backoff; the
//! state is visible in GetOrder.

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::outbound::tiktok_api::TiktokApi;

pub struct TiktokSync {
    pub pool: sqlx::PgPool,
    pub api: TiktokApi,
    pub every: Duration,
    /// Delay before retry `n` is `retry_base * 2^n`, capped at an hour.
    pub retry_base: Duration,
}

impl TiktokSync {
    /// Pushes the due rows; returns how many reached TikTok.
    pub async fn push_due(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT s.id, s.order_id, s.tenant_id, s.action, s.payload, s.attempts, o.source_id, o.platform_shop_id, o.platform_packages
             FROM tiktok_sync s JOIN orders o ON o.id = s.order_id
             WHERE s.status <> 'synced' AND s.next_attempt_at <= now() AND s.attempts < 50
             ORDER BY s.id LIMIT 20 FOR UPDATE OF s SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut synced = 0;
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let order_id: Uuid = row.try_get("order_id")?;
            let tenant_id: Uuid = row.try_get("tenant_id")?;
            let action: String = row.try_get("action")?;
            let payload: serde_json::Value = row.try_get("payload")?;
            let attempts: i32 = row.try_get("attempts")?;
            let tiktok_order_id: String = row.try_get("source_id")?;
            let shop_id: Option<String> = row.try_get("platform_shop_id")?;
            let packages: Vec<String> = row.try_get("platform_packages")?;
            let shop_id = shop_id.unwrap_or_default();
            let text = |key: &str| payload.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let result = match action.as_str() {
                "cancel" => self.api.cancel(tenant_id, &shop_id, &tiktok_order_id, &text("reason")).await,
                _ => match packages.first() {
                    Some(package) => {
                        self.api
                            .ship(tenant_id, &shop_id, package, &text("tracking_number"), &text("shipping_provider_id"))
                            .await
                    }
                    None => Err(crate::outbound::tiktok_api::Error::Malformed(
                        "the order has no TikTok package to ship".into(),
                    )),
                },
            };
            match result {
                Ok(()) => {
                    sqlx::query("UPDATE tiktok_sync SET status = 'synced', attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    synced += 1;
                }
                Err(err) => {
                    let delay = self
                        .retry_base
                        .saturating_mul(2u32.saturating_pow(attempts.clamp(0, 16) as u32))
                        .min(Duration::from_secs(3600));
                    tracing::warn!(%order_id, %action, error = %err, "TikTok Shop sync failed; will retry");
                    sqlx::query(
                        "UPDATE tiktok_sync SET status = 'failed', attempts = attempts + 1, last_error = $2,
                           next_attempt_at = now() + make_interval(secs => $3), updated_at = now() WHERE id = $1",
                    )
                    .bind(id)
                    .bind(err.to_string())
                    .bind(delay.as_secs_f64())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(synced)
    }

    pub async fn run(self, token: CancellationToken) {
        loop {
            match self.push_due().await {
                Ok(0) => {}
                Ok(synced) => tracing::info!(synced, "pushed order changes to TikTok Shop"),
                Err(err) => tracing::warn!(error = %err, "TikTok Shop sync pass failed"),
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }
}
