//! The order service's settings: the shared ones, the payment timeout, and TikTok Shop.

use std::time::Duration;

use service_runtime::{CommonConfig, ServiceConfig};
use settings::Secret;

use crate::commits::CommitConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub payment_timeout_every: Duration,
    /// Where ingest's channel registry is (TikTok Shop credentials).
    pub ingest_url: String,
    pub tiktok_api_base_url: String,
    pub tiktok_app_key: Secret,
    pub tiktok_app_secret: Secret,
    pub tiktok_retry: resilience::RetryPolicy,
    pub tiktok_breaker: resilience::BreakerConfig,
    pub tiktok_sync_every: Duration,
    pub tiktok_sync_retry_base: Duration,
    /// Group commits of CreateOrder and status changes.
    pub commits: CommitConfig,
}

fn invalid(key: &str, err: impl std::fmt::Display) -> settings::Error {
    settings::Error::Invalid { key: key.into(), reason: err.to_string() }
}

/// The development TikTok app (the same defaults ingest uses).
pub const DEV_TIKTOK_APP_KEY: &str = "dev-tiktok-app-key";
pub const DEV_TIKTOK_APP_SECRET: &str = "dev-tiktok-app-secret";

impl ServiceConfig for Config {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error> {
        Ok(Self {
            common: CommonConfig::from_env(env, "order")?,
            payment_timeout_every: env.millis("ORDER_PAYMENT_TIMEOUT_EVERY_MS", Duration::from_secs(30))?,
            ingest_url: env.get("INGEST_GRPC_URL", "http://127.0.0.1:50050".to_string())?,
            tiktok_api_base_url: env.get("TIKTOK_API_BASE_URL", "https://open-api.tiktokglobalshop.com".to_string())?,
            tiktok_app_key: env.secret("TIKTOK_APP_KEY", DEV_TIKTOK_APP_KEY)?,
            tiktok_app_secret: env.secret("TIKTOK_APP_SECRET", DEV_TIKTOK_APP_SECRET)?,
            tiktok_retry: resilience::RetryPolicy::from_env("TIKTOK_API", resilience::RetryPolicy::external_api())
                .map_err(|e| invalid("TIKTOK_API_*", e))?,
            tiktok_breaker: resilience::BreakerConfig::from_env("TIKTOK_API", resilience::BreakerConfig::default())
                .map_err(|e| invalid("TIKTOK_API_BREAKER_*", e))?,
            tiktok_sync_every: env.millis("ORDER_TIKTOK_SYNC_EVERY_MS", Duration::from_secs(5))?,
            tiktok_sync_retry_base: env.millis("ORDER_TIKTOK_SYNC_RETRY_BASE_MS", Duration::from_secs(30))?,
            commits: CommitConfig {
                create_committers: env.get("ORDER_CREATE_COMMITTERS", 4)?,
                create_max_batch: env.get("ORDER_CREATE_MAX_BATCH", 64)?,
                status_committers: env.get("ORDER_STATUS_COMMITTERS", 4)?,
                status_max_batch: env.get("ORDER_STATUS_MAX_BATCH", 64)?,
            },
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    pub fn for_tests(common: CommonConfig) -> Self {
        let env = settings::Env::from_lookup(|_| None).expect("empty env");
        let mut config = Self::from_env(&env).expect("defaults");
        config.common = common;
        config.payment_timeout_every = Duration::from_millis(200);
        config.ingest_url = "http://127.0.0.1:1".into();
        config.tiktok_api_base_url = "http://127.0.0.1:1".into();
        config.tiktok_retry = resilience::RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            factor: 2.0,
            jitter: false,
        };
        config.tiktok_sync_every = Duration::from_millis(100);
        config.tiktok_sync_retry_base = Duration::from_millis(100);
        config
    }
}
