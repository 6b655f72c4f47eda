//! Tells customers over WhatsApp and Instagram, with retries and delivery status.

pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;
pub mod startup;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "notifier",
    version: env!("CARGO_PKG_VERSION"),
    description: "Tells customers over WhatsApp and Instagram, with retries and delivery status",
};
