//! The order lifecycle: state machine, history, audit, order codes, search, TikTok Shop sync.

pub mod commits;
pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;
pub mod payment_timeout;
pub mod startup;
pub mod tiktok_sync;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "order",
    version: env!("CARGO_PKG_VERSION"),
    description: "The order lifecycle: state machine, history, audit, order codes, search, TikTok Shop sync",
};
