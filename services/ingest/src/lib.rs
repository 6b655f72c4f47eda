//! Receives Meta and TikTok Shop webhooks, verifies and normalises them, publishes them durably.

pub mod accept;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod metrics;
pub mod outbound;
pub mod reseal;
pub mod startup;
pub mod token_refresh;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "ingest",
    version: env!("CARGO_PKG_VERSION"),
    description: "Receives Meta and TikTok Shop webhooks, verifies and normalises them, publishes them durably",
};
