//! How every service starts and stops, so all six behave the same.
//!
//! Shutdown order (taken from Neon): one signal cancels the root token; intake stops first (HTTP
//! and gRPC stop accepting, consumers stop fetching); in-flight work is joined against one
//! deadline; then the caller flushes telemetry. A second signal exits at once.

mod config;
mod grpc;
mod main_loop;
mod micro;
mod ops_http;
mod shutdown;
mod tasks;
mod wiring;

pub use config::{CommonConfig, PORTS};
pub use grpc::{GrpcServer, db_status, serve_grpc};
pub use main_loop::{ServiceConfig, run};
pub use micro::register_micro_service;
pub use ops_http::{Readiness, ReadinessCheck, Required, ops_router, serve_http};
pub use shutdown::install_signal_handler;
pub use tasks::Tasks;
pub use wiring::{Application, Wiring};

/// Who a service is, for health, NATS micro and logs.
#[derive(Debug, Clone, Copy)]
pub struct ServiceIdentity {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
}
