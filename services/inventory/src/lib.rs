//! The catalog and its prices, stock, and reservations that never oversell.

pub mod config;
pub mod domain;
pub mod inbound;
pub mod outbound;
pub mod reserve;
pub mod search;
pub mod startup;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "inventory",
    version: env!("CARGO_PKG_VERSION"),
    description: "The catalog and its prices, stock, and reservations that never oversell",
};
