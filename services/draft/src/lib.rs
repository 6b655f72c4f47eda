//! Turns messages into draft orders that a person reviews, edits, approves or rejects.

pub mod approve;
pub mod catalog_cache;
pub mod config;
pub mod domain;
pub mod expire;
pub mod inbound;
pub mod outbound;
pub mod propose;
pub mod startup;

pub use config::Config;

pub const IDENTITY: service_runtime::ServiceIdentity = service_runtime::ServiceIdentity {
    name: "draft",
    version: env!("CARGO_PKG_VERSION"),
    description: "Turns messages into draft orders that a person reviews, edits, approves or rejects",
};
