//! The draft service's settings: the shared ones, where inventory and order are, and the
//! approval and expiry timings.

use std::time::Duration;

use service_runtime::{CommonConfig, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub inventory_url: String,
    pub order_url: String,
    /// How long an approver holds a draft before the sweeper may take it over.
    pub approval_lease: Duration,
    /// How long ApproveDraft waits for a concurrent approval of the same draft.
    pub approval_wait: Duration,
    pub sweep_every: Duration,
    /// Group-commit workers for each durable approval step, and the most approvals per commit.
    pub approval_committers: usize,
    pub approval_max_batch: usize,
    pub expiry_every: Duration,
    /// The message consumer: lanes (one customer's messages always share one) and the most
    /// messages a lane handles in one transaction.
    pub message_lanes: usize,
    pub message_max_batch: usize,
    pub calls_retry: resilience::RetryPolicy,
    pub calls_breaker: resilience::BreakerConfig,
}

fn invalid(key: &str, err: impl std::fmt::Display) -> settings::Error {
    settings::Error::Invalid { key: key.into(), reason: err.to_string() }
}

impl ServiceConfig for Config {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error> {
        Ok(Self {
            common: CommonConfig::from_env(env, "draft")?,
            inventory_url: env.get("INVENTORY_GRPC_URL", "http://127.0.0.1:50053".to_string())?,
            order_url: env.get("ORDER_GRPC_URL", "http://127.0.0.1:50052".to_string())?,
            approval_lease: env.millis("DRAFT_APPROVAL_LEASE_MS", Duration::from_secs(30))?,
            approval_wait: env.millis("DRAFT_APPROVAL_WAIT_MS", Duration::from_secs(20))?,
            sweep_every: env.millis("DRAFT_SWEEP_EVERY_MS", Duration::from_secs(1))?,
            approval_committers: env.get("DRAFT_APPROVAL_COMMITTERS", 4)?,
            approval_max_batch: env.get("DRAFT_APPROVAL_MAX_BATCH", 64)?,
            expiry_every: env.millis("DRAFT_EXPIRY_EVERY_MS", Duration::from_secs(5))?,
            message_lanes: env.get("DRAFT_MESSAGE_LANES", 4)?,
            message_max_batch: env.get("DRAFT_MESSAGE_MAX_BATCH", 64)?,
            calls_retry: resilience::RetryPolicy::from_env("DRAFT_CALLS", resilience::RetryPolicy::internal())
                .map_err(|e| invalid("DRAFT_CALLS_*", e))?,
            calls_breaker: resilience::BreakerConfig::from_env("DRAFT_CALLS", resilience::BreakerConfig::default())
                .map_err(|e| invalid("DRAFT_CALLS_BREAKER_*", e))?,
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    /// In-process tests: the given service addresses, second-scale timings.
    pub fn for_tests(common: CommonConfig, inventory_url: &str, order_url: &str) -> Self {
        Self {
            common,
            inventory_url: inventory_url.to_string(),
            order_url: order_url.to_string(),
            approval_lease: Duration::from_secs(2),
            approval_wait: Duration::from_secs(10),
            sweep_every: Duration::from_millis(200),
            approval_committers: 4,
            approval_max_batch: 64,
            expiry_every: Duration::from_millis(200),
            message_lanes: 4,
            message_max_batch: 64,
            calls_retry: resilience::RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                factor: 2.0,
                jitter: false,
            },
            calls_breaker: resilience::BreakerConfig::default(),
        }
    }
}
