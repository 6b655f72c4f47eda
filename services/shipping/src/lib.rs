//! Rates, labels and tracking through carrier adapters.

pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;
pub mod startup;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "shipping",
    version: env!("CARGO_PKG_VERSION"),
    description: "Rates, labels and tracking through carrier adapters",
};
