//! The order service's settings: the shared ones, and how often the payment timeout runs.

use std::time::Duration;

use service_runtime::{CommonConfig, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub payment_timeout_every: Duration,
}

impl ServiceConfig for Config {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error> {
        Ok(Self {
            common: CommonConfig::from_env(env, "order")?,
            payment_timeout_every: env.millis("ORDER_PAYMENT_TIMEOUT_EVERY_MS", Duration::from_secs(30))?,
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    pub fn for_tests(common: CommonConfig) -> Self {
        Self { common, payment_timeout_every: Duration::from_millis(200) }
    }
}
