//! Retries and circuit breaking for every outbound call in orderflow: marketplace HTTP APIs
//! (reqwest), our own gRPC services (tonic) and NATS publishes. This is the one place that decides
//! when a call is repeated; adapters describe their errors with [`Classify`] and never write their
//! own retry loops.
//!
//! - [`RetryPolicy`] ([`retry`]): capped exponential backoff that repeats only transient failures.
//! - [`Classify`] ([`classify`]): the table of what is transient (HTTP statuses, gRPC codes, reqwest
//!   errors).
//! - [`CircuitBreaker`] ([`breaker`]): one per dependency; fails fast while it is down and exports
//!   its state to Prometheus.
//! - [`call_with_retry`]: both together, failing fast when the breaker is open.
//!
//! Backoff comes from `backon`, the maintained successor of the unmaintained `backoff` crate
//! (RUSTSEC-2025-0012); do not bring `backoff` back.
//!
//! Time is `tokio::time`, so tests run with paused time and never really sleep.

pub mod breaker;
pub mod classify;
pub mod env;
mod guarded;
pub mod retry;

pub use breaker::{BreakerConfig, BreakerError, BreakerState, CircuitBreaker};
pub use classify::{Classify, Retryability};
pub use guarded::call_with_retry;
pub use retry::RetryPolicy;
