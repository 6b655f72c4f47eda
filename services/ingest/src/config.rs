//! The ingest service's settings: the shared ones, the platform secrets, and its limits.

use std::time::Duration;

use service_runtime::{CommonConfig, ServiceConfig};
use settings::{Env, Secret};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub meta_app_secret: Secret,
    /// During a rotation, the Meta app secret being replaced: webhooks signed with it are still
    /// accepted (empty: none).
    pub meta_app_secret_previous: Secret,
    pub meta_verify_token: Secret,
    pub tiktok_app_key: Secret,
    pub tiktok_app_secret: Secret,
    /// The same for TikTok Shop; API calls always sign with the current secret.
    pub tiktok_app_secret_previous: Secret,
    /// 32 bytes, base64: seals channel credentials at rest.
    pub credentials_key: Secret,
    /// Earlier credentials keys, comma-separated, still accepted for opening while a rotation
    /// moves every channel onto the current key (empty: none).
    pub credentials_key_previous: Secret,
    /// Largest webhook body accepted (Meta sends up to 3 MB).
    pub max_body_bytes: usize,
    /// Parallel committers; each commits whatever webhooks are waiting in one transaction.
    pub committers: usize,
    pub max_batch: usize,
    pub archive_retention: Duration,
    pub dedupe_retention: Duration,
    pub housekeeping_every: Duration,
    /// TikTok Shop's auth host (the token refresh endpoint); a local fake in tests.
    pub tiktok_auth_base_url: String,
    pub token_refresh_ahead: Duration,
    pub token_refresh_every: Duration,
    pub tiktok_retry: resilience::RetryPolicy,
    pub tiktok_breaker: resilience::BreakerConfig,
}

/// Local defaults the quick start prints (never accepted with ORDERFLOW_ENV=production).
pub const DEV_META_APP_SECRET: &str = "dev-meta-app-secret";
pub const DEV_META_VERIFY_TOKEN: &str = "dev-verify-token";
pub const DEV_TIKTOK_APP_KEY: &str = "dev-tiktok-app-key";
pub const DEV_TIKTOK_APP_SECRET: &str = "dev-tiktok-app-secret";
const DEV_CREDENTIALS_KEY: &str = "b3JkZXJmbG93LWRldi1jcmVkZW50aWFscy1rZXkhISE=";

const DAY: Duration = Duration::from_secs(24 * 3600);

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, settings::Error> {
        let dedupe_retention = env.millis("INGEST_DEDUPE_RETENTION_MS", 10 * DAY)?;
        if dedupe_retention < 8 * DAY {
            return Err(settings::Error::Invalid {
                key: "INGEST_DEDUPE_RETENTION_MS".into(),
                reason: "must be at least 8 days: platforms retry for up to a week".into(),
            });
        }
        Ok(Self {
            common: CommonConfig::from_env(env, "ingest")?,
            meta_app_secret: env.secret("META_APP_SECRET", DEV_META_APP_SECRET)?,
            meta_app_secret_previous: Secret::new(env.raw("META_APP_SECRET_PREVIOUS").unwrap_or_default()),
            meta_verify_token: env.secret("META_VERIFY_TOKEN", DEV_META_VERIFY_TOKEN)?,
            tiktok_app_key: env.secret("TIKTOK_APP_KEY", DEV_TIKTOK_APP_KEY)?,
            tiktok_app_secret: env.secret("TIKTOK_APP_SECRET", DEV_TIKTOK_APP_SECRET)?,
            tiktok_app_secret_previous: Secret::new(env.raw("TIKTOK_APP_SECRET_PREVIOUS").unwrap_or_default()),
            credentials_key: env.secret("ORDERFLOW_CREDENTIALS_KEY", DEV_CREDENTIALS_KEY)?,
            credentials_key_previous: Secret::new(env.raw("ORDERFLOW_CREDENTIALS_KEY_PREVIOUS").unwrap_or_default()),
            max_body_bytes: env.get("INGEST_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
            committers: env.get("INGEST_COMMITTERS", 4)?,
            max_batch: env.get("INGEST_MAX_BATCH", 128)?,
            archive_retention: env.millis("INGEST_ARCHIVE_RETENTION_MS", 30 * DAY)?,
            dedupe_retention,
            housekeeping_every: env.millis("INGEST_HOUSEKEEPING_EVERY_MS", Duration::from_secs(300))?,
            tiktok_auth_base_url: env.get("TIKTOK_AUTH_BASE_URL", "https://auth.tiktok-shops.com".to_string())?,
            token_refresh_ahead: env.millis("TIKTOK_TOKEN_REFRESH_AHEAD_MS", DAY)?,
            token_refresh_every: env.millis("TIKTOK_TOKEN_REFRESH_EVERY_MS", Duration::from_secs(600))?,
            tiktok_retry: resilience::RetryPolicy::from_env("TIKTOK_API", resilience::RetryPolicy::external_api())
                .map_err(|e| settings::Error::Invalid { key: "TIKTOK_API_*".into(), reason: e.to_string() })?,
            tiktok_breaker: resilience::BreakerConfig::from_env("TIKTOK_API", resilience::BreakerConfig::default())
                .map_err(|e| settings::Error::Invalid { key: "TIKTOK_API_BREAKER_*".into(), reason: e.to_string() })?,
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    /// Settings for in-process tests: the development secrets and fast timings.
    pub fn for_tests(common: CommonConfig) -> Self {
        let env = Env::from_lookup(|_| None).expect("empty env");
        let mut config = Self::from_env(&env).expect("defaults");
        config.common = common;
        config
    }
}
