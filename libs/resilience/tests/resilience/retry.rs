//! The retry loop: what it repeats, how often, and how long it waits in between.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::RetryPolicy;
use tokio::time::Instant;

use crate::support::{Calls, FakeError};

fn policy(max_attempts: u32, base_ms: u64, max_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(base_ms),
        max_delay: Duration::from_millis(max_ms),
        factor: 2.0,
        jitter: false,
    }
}

/// Runs `policy` over a call that fails with `fail(n)` on attempt n until `succeed_on`, and returns
/// the result together with the paused-clock delay between consecutive attempts.
async fn run(
    policy: RetryPolicy,
    succeed_on: Option<u32>,
    fail: fn(u32) -> FakeError,
) -> (Result<u32, FakeError>, Vec<Duration>) {
    let calls = Calls::default();
    let started: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let result = policy
        .retry("test-op", || {
            let n = calls.next();
            started.lock().expect("not poisoned").push(Instant::now());
            async move {
                match succeed_on {
                    Some(k) if n >= k => Ok(n),
                    _ => Err(fail(n)),
                }
            }
        })
        .await;
    let started = started.lock().expect("not poisoned").clone();
    let gaps = started.windows(2).map(|w| w[1] - w[0]).collect();
    (result, gaps)
}

fn ms(values: &[u64]) -> Vec<Duration> {
    values.iter().copied().map(Duration::from_millis).collect()
}

#[tokio::test(start_paused = true)]
async fn transient_errors_use_every_attempt_then_return_the_last() {
    for max_attempts in [1, 2, 5] {
        let (result, gaps) = run(policy(max_attempts, 10, 1_000), None, FakeError::Transient).await;
        assert_eq!(result, Err(FakeError::Transient(max_attempts)));
        assert_eq!(gaps.len() as u32, max_attempts - 1);
    }
}

#[tokio::test(start_paused = true)]
async fn zero_attempts_still_calls_once() {
    let (result, gaps) = run(policy(0, 10, 1_000), None, FakeError::Transient).await;
    assert_eq!(result, Err(FakeError::Transient(1)));
    assert!(gaps.is_empty());
}

#[tokio::test(start_paused = true)]
async fn permanent_error_stops_at_once() {
    let started = Instant::now();
    let (result, gaps) = run(policy(5, 10, 1_000), None, FakeError::Permanent).await;
    assert_eq!(result, Err(FakeError::Permanent(1)));
    assert!(gaps.is_empty(), "exactly one call");
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff after a permanent error");
}

#[tokio::test(start_paused = true)]
async fn permanent_error_after_transient_ones_stops_there() {
    let calls = Calls::default();
    let result: Result<(), _> = policy(5, 10, 1_000)
        .retry("test-op", || {
            let n = calls.next();
            async move { Err(if n < 3 { FakeError::Transient(n) } else { FakeError::Permanent(n) }) }
        })
        .await;
    assert_eq!(result, Err(FakeError::Permanent(3)));
    assert_eq!(calls.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn succeeds_on_third_attempt() {
    let (result, gaps) = run(policy(5, 10, 1_000), Some(3), FakeError::Transient).await;
    assert_eq!(result, Ok(3));
    assert_eq!(gaps, ms(&[10, 20]));
}

#[tokio::test(start_paused = true)]
async fn delays_grow_by_factor_and_stop_at_the_cap() {
    let (_, gaps) = run(policy(7, 100, 500), None, FakeError::Transient).await;
    assert_eq!(gaps, ms(&[100, 200, 400, 500, 500, 500]));

    let tripling = RetryPolicy { factor: 3.0, ..policy(4, 10, 10_000) };
    let (_, gaps) = run(tripling, None, FakeError::Transient).await;
    assert_eq!(gaps, ms(&[10, 30, 90]));
}

#[tokio::test(start_paused = true)]
async fn base_above_cap_is_capped() {
    let (_, gaps) = run(policy(3, 1_000, 100), None, FakeError::Transient).await;
    assert_eq!(gaps, ms(&[100, 100]));
}

#[tokio::test(start_paused = true)]
async fn external_api_default_schedule() {
    let external = RetryPolicy { jitter: false, ..RetryPolicy::external_api() };
    let (result, gaps) = run(external, None, FakeError::Transient).await;
    assert_eq!(result, Err(FakeError::Transient(5)));
    assert_eq!(gaps, ms(&[1_000, 2_000, 4_000, 8_000]));
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_between_half_and_full_and_under_the_cap() {
    let jittered = RetryPolicy { jitter: true, ..policy(8, 100, 1_000) };
    let nominal = ms(&[100, 200, 400, 800, 1_000, 1_000, 1_000]);
    for _ in 0..20 {
        let (_, gaps) = run(jittered, None, FakeError::Transient).await;
        assert_eq!(gaps.len(), nominal.len());
        for (gap, nominal) in gaps.iter().zip(&nominal) {
            assert!(*gap >= *nominal / 2 && gap <= nominal, "{gap:?} outside [{:?}, {nominal:?}]", *nominal / 2);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn works_with_tonic_status() {
    let calls = Calls::default();
    let result: Result<(), tonic::Status> = policy(3, 10, 100)
        .retry("inventory.Reserve", || {
            calls.next();
            async { Err(tonic::Status::unavailable("connection refused")) }
        })
        .await;
    assert_eq!(result.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
    assert_eq!(calls.count(), 3);

    let calls = Calls::default();
    let result: Result<(), tonic::Status> = policy(3, 10, 100)
        .retry("inventory.Reserve", || {
            calls.next();
            async { Err(tonic::Status::aborted("version conflict")) }
        })
        .await;
    assert_eq!(result.map_err(|s| s.code()), Err(tonic::Code::Aborted));
    assert_eq!(calls.count(), 1);
}
