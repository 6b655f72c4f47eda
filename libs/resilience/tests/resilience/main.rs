//! Behaviour of the public API, run with paused tokio time so no test really sleeps.

mod breaker;
mod guarded;
mod metrics;
mod retry;
mod support;
