//! The shipping service's settings: the shared ones, and its own.

use service_runtime::{CommonConfig, ServiceConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
}

impl ServiceConfig for Config {
    fn from_env(env: &settings::Env) -> Result<Self, settings::Error> {
        Ok(Self { common: CommonConfig::from_env(env, "shipping")? })
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
