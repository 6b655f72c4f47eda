//! The inventory service's settings: the shared ones, and its reservation batching.

use service_runtime::{CommonConfig, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Parallel reservation committers, each committing whatever Reserve calls are waiting.
    pub reserve_committers: usize,
    pub reserve_max_batch: usize,
    /// Order events handled in one transaction by a consumer lane.
    pub consumer_max_batch: usize,
}

impl ServiceConfig for Config {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error> {
        Ok(Self {
            common: CommonConfig::from_env(env, "inventory")?,
            reserve_committers: env.get("INVENTORY_RESERVE_COMMITTERS", 4)?,
            reserve_max_batch: env.get("INVENTORY_RESERVE_MAX_BATCH", 64)?,
            consumer_max_batch: env.get("INVENTORY_CONSUMER_MAX_BATCH", 64)?,
        })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    pub fn for_tests(common: CommonConfig) -> Self {
        Self { common, reserve_committers: 4, reserve_max_batch: 64, consumer_max_batch: 64 }
    }
}
