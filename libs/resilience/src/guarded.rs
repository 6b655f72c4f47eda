//! Retries through a circuit breaker: the combination most outbound calls want.

use std::fmt::Display;
use std::sync::{Mutex, PoisonError};

use crate::breaker::{BreakerError, CircuitBreaker};
use crate::classify::{Classify, Retryability};
use crate::retry::RetryPolicy;

/// Runs `f` under `policy`, sending every attempt through `breaker`.
///
/// Transient failures are retried as by [`RetryPolicy::retry`]. An open breaker ends the retries at
/// once and returns [`BreakerError::Open`]: the breaker already knows the dependency is down, so
/// waiting out the backoff would only hold the caller and then hammer the dependency the moment it
/// probes. Callers that prefer to wait (background loops) wrap [`CircuitBreaker::call`] in
/// [`RetryPolicy::retry`] themselves, where `Open` counts as transient.
pub async fn call_with_retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    breaker: &CircuitBreaker,
    operation_name: &str,
    f: F,
) -> Result<T, BreakerError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + Display,
{
    // Each attempt's future must reach `f` only after the breaker admits it, so `f` is shared with
    // the attempts behind a lock instead of being called up front. Attempts run one at a time and the
    // guard is released before the call's future is awaited, so the lock is never contended.
    let f = &Mutex::new(f);
    policy
        .retry_if(
            operation_name,
            move || {
                breaker.call(move || {
                    let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
                    f()
                })
            },
            |err: &BreakerError<E>| match err {
                BreakerError::Open { .. } => false,
                BreakerError::Inner(inner) => inner.retryability() == Retryability::Transient,
            },
        )
        .await
}
