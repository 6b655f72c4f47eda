//! Keeps TikTok Shop access tokens fresh: shortly before one expires, the refresh token is
//! exchanged for a new pair and sealed back into the channel. Several replicas never refresh the
//! same channel at once (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use proto::ingest::v1 as pb;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::outbound::credentials::CredentialSealer;
use crate::outbound::tiktok_auth::TiktokAuthClient;

pub struct TokenRefresher {
    pub pool: PgPool,
    pub sealer: CredentialSealer,
    pub client: TiktokAuthClient,
    /// Refresh tokens expiring within this window.
    pub ahead: Duration,
    pub every: Duration,
}

impl TokenRefresher {
    pub async fn run(self, token: CancellationToken) {
        loop {
            match self.refresh_due().await {
                Ok(0) => {}
                Ok(refreshed) => tracing::info!(refreshed, "refreshed TikTok Shop access tokens"),
                Err(err) => tracing::warn!(error = %err, "token refresh pass failed; will retry"),
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Refreshes every due channel; returns how many were refreshed.
    pub async fn refresh_due(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT id, credentials FROM channels
             WHERE platform = 'tiktok_shop' AND enabled AND credentials IS NOT NULL
               AND (access_token_expires_at IS NULL OR access_token_expires_at < now() + make_interval(secs => $1))
             ORDER BY access_token_expires_at NULLS FIRST LIMIT 50
             FOR UPDATE SKIP LOCKED",
        )
        .bind(self.ahead.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        let mut refreshed = 0;
        for (channel_id, sealed) in due {
            match self.refresh_one(channel_id, &sealed).await {
                Ok((sealed, expires_at)) => {
                    sqlx::query(
                        "UPDATE channels SET credentials = $2, credentials_updated_at = now(),
                           access_token_expires_at = to_timestamp($3), refresh_failures = 0, last_refresh_error = NULL
                         WHERE id = $1",
                    )
                    .bind(channel_id)
                    .bind(sealed)
                    .bind(expires_at as f64)
                    .execute(&mut *tx)
                    .await?;
                    refreshed += 1;
                }
                Err(reason) => {
                    tracing::warn!(%channel_id, %reason, "TikTok Shop token refresh failed");
                    sqlx::query(
                        "UPDATE channels SET refresh_failures = refresh_failures + 1, last_refresh_error = $2 WHERE id = $1",
                    )
                    .bind(channel_id)
                    .bind(&reason)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(refreshed)
    }

    async fn refresh_one(&self, channel_id: Uuid, sealed: &[u8]) -> Result<(Vec<u8>, i64), String> {
        let plaintext = self.sealer.open(channel_id, sealed).map_err(|e| e.to_string())?;
        let mut credentials: pb::ChannelCredentials =
            prost::Message::decode(plaintext.as_slice()).map_err(|e| e.to_string())?;
        if credentials.refresh_token.is_empty() {
            return Err("no refresh token stored".into());
        }
        let tokens = self.client.refresh(&credentials.refresh_token).await.map_err(|e| e.to_string())?;
        credentials.access_token = tokens.access_token;
        credentials.refresh_token = tokens.refresh_token;
        credentials.access_token_expires_at =
            Some(prost_types::Timestamp { seconds: tokens.access_token_expires_at, nanos: 0 });
        credentials.refresh_token_expires_at =
            Some(prost_types::Timestamp { seconds: tokens.refresh_token_expires_at, nanos: 0 });
        let sealed =
            self.sealer.seal(channel_id, &prost::Message::encode_to_vec(&credentials)).map_err(|e| e.to_string())?;
        Ok((sealed, tokens.access_token_expires_at))
    }
}
