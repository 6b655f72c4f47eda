//! `call_with_retry`: retries whose every attempt goes through the breaker.

use std::time::Duration;

use resilience::{BreakerConfig, BreakerError, BreakerState, CircuitBreaker, RetryPolicy, call_with_retry};
use tokio::time::Instant;

use crate::support::{Calls, FakeError};

const BASE: Duration = Duration::from_millis(10);

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy { max_attempts, base_delay: BASE, max_delay: Duration::from_secs(1), factor: 2.0, jitter: false }
}

fn breaker(name: &str, failure_threshold: u32) -> CircuitBreaker {
    CircuitBreaker::new(name, BreakerConfig { failure_threshold, reset_timeout: Duration::from_secs(60) })
}

#[tokio::test(start_paused = true)]
async fn retries_transient_failures_through_the_breaker() {
    let breaker = breaker("guarded-ok", 10);
    let calls = Calls::default();
    let result = call_with_retry(&policy(5), &breaker, "op", || {
        let n = calls.next();
        async move { if n < 3 { Err(FakeError::Transient(n)) } else { Ok(n) } }
    })
    .await;
    assert_eq!(result.ok(), Some(3));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_return_the_last_inner_error() {
    let breaker = breaker("guarded-exhausted", 10);
    let calls = Calls::default();
    let result: Result<(), _> = call_with_retry(&policy(3), &breaker, "op", || {
        let n = calls.next();
        async move { Err(FakeError::Transient(n)) }
    })
    .await;
    assert!(matches!(result, Err(BreakerError::Inner(FakeError::Transient(3)))));
}

#[tokio::test(start_paused = true)]
async fn permanent_error_is_not_retried() {
    let breaker = breaker("guarded-permanent", 10);
    let calls = Calls::default();
    let result: Result<(), _> = call_with_retry(&policy(5), &breaker, "op", || {
        let n = calls.next();
        async move { Err(FakeError::Permanent(n)) }
    })
    .await;
    assert!(matches!(result, Err(BreakerError::Inner(FakeError::Permanent(1)))));
    assert_eq!(calls.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_opening_mid_retry_stops_at_once() {
    let breaker = breaker("guarded-opens", 2);
    let calls = Calls::default();
    let started = Instant::now();
    let result: Result<(), _> = call_with_retry(&policy(5), &breaker, "op", || {
        let n = calls.next();
        async move { Err(FakeError::Transient(n)) }
    })
    .await;
    assert!(matches!(result, Err(BreakerError::Open { .. })), "{result:?}");
    assert_eq!(calls.count(), 2, "the attempt after the breaker opened never ran");
    // Waited before attempts 2 and 3 (the rejected one), then no more.
    assert_eq!(started.elapsed(), BASE + BASE * 2);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_fails_fast_without_calling_f() {
    let breaker = breaker("guarded-already-open", 1);
    let _ = breaker.call(|| async { Err::<(), _>(FakeError::Transient(0)) }).await;

    let calls = Calls::default();
    let started = Instant::now();
    let result: Result<(), _> = call_with_retry(&policy(5), &breaker, "op", || {
        calls.next();
        async { Ok::<(), FakeError>(()) }
    })
    .await;
    assert!(matches!(result, Err(BreakerError::Open { .. })));
    assert_eq!(calls.count(), 0);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn background_loop_can_wait_out_an_open_breaker() {
    // The other composition: `Open` is transient, so a plain retry around `call` keeps waiting
    // until the breaker lets a probe through.
    let breaker = CircuitBreaker::new(
        "guarded-background",
        BreakerConfig { failure_threshold: 1, reset_timeout: Duration::from_millis(25) },
    );
    let _ = breaker.call(|| async { Err::<(), _>(FakeError::Transient(0)) }).await;

    let calls = Calls::default();
    let result = policy(5)
        .retry("relay", || {
            breaker.call(|| {
                calls.next();
                async { Ok::<_, FakeError>("published") }
            })
        })
        .await;
    assert_eq!(result.ok(), Some("published"));
    assert_eq!(calls.count(), 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn futures_can_be_spawned() {
    // Callers run these inside `tokio::spawn`, which needs `Send` futures.
    fn assert_send<T: Send>(_: &T) {}
    let breaker = breaker("guarded-send", 10);
    let policy = policy(3);
    let attempt = || async { Ok::<_, FakeError>(()) };
    assert_send(&call_with_retry(&policy, &breaker, "op", attempt));
    assert_send(&breaker.call(attempt));
    assert_send(&policy.retry("op", attempt));
}
