//! The breaker's state machine, driven one outcome at a time.

use std::time::Duration;

use resilience::{BreakerConfig, BreakerError, BreakerState, CircuitBreaker, Classify, Retryability};
use tokio::sync::oneshot;

use crate::support::{Calls, FakeError};

const RESET: Duration = Duration::from_secs(60);

fn breaker(name: &str, failure_threshold: u32) -> CircuitBreaker {
    CircuitBreaker::new(name, BreakerConfig { failure_threshold, reset_timeout: RESET })
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Ok,
    Transient,
    Permanent,
}

/// Makes one call that ends as `step` says.
async fn step(breaker: &CircuitBreaker, step: Step) -> Result<(), BreakerError<FakeError>> {
    breaker
        .call(|| async move {
            match step {
                Step::Ok => Ok(()),
                Step::Transient => Err(FakeError::Transient(0)),
                Step::Permanent => Err(FakeError::Permanent(0)),
            }
        })
        .await
}

fn assert_open(result: Result<(), BreakerError<FakeError>>, dependency: &str, retry_in: Duration) {
    match result {
        Err(BreakerError::Open { dependency: got, retry_in: got_retry_in }) => {
            assert_eq!(got, dependency);
            assert_eq!(got_retry_in, retry_in);
        }
        other => panic!("expected Open, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn state_machine_table() {
    use BreakerState::{Closed, Open};
    use Step::{Ok, Permanent, Transient};
    // (threshold, steps, state after each step)
    let table: &[(u32, &[Step], &[BreakerState])] = &[
        // Opens after exactly N consecutive transient failures.
        (1, &[Transient], &[Open]),
        (3, &[Transient, Transient, Transient], &[Closed, Closed, Open]),
        // Permanent errors are not an outage: they never trip the breaker...
        (2, &[Permanent, Permanent, Permanent, Permanent], &[Closed, Closed, Closed, Closed]),
        // ...and do not hide one either: they leave the count as it was.
        (2, &[Transient, Permanent, Transient], &[Closed, Closed, Open]),
        // A success resets the count.
        (3, &[Transient, Transient, Ok, Transient, Transient], &[Closed; 5]),
        (
            3,
            &[Transient, Transient, Ok, Transient, Transient, Transient],
            &[Closed, Closed, Closed, Closed, Closed, Open],
        ),
        // Zero is treated as one rather than never opening.
        (0, &[Transient], &[Open]),
    ];
    for (row, &(threshold, steps, states)) in table.iter().enumerate() {
        let breaker = breaker(&format!("table-{row}"), threshold);
        assert_eq!(breaker.state(), Closed);
        for (i, (&s, &expected)) in steps.iter().zip(states).enumerate() {
            let result = step(&breaker, s).await;
            assert!(!matches!(result, Err(BreakerError::Open { .. })), "row {row} step {i}: call was rejected");
            assert_eq!(breaker.state(), expected, "row {row} after step {i} ({s:?})");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn inner_results_pass_through() {
    let breaker = breaker("pass-through", 5);
    assert_eq!(breaker.call(|| async { Ok::<_, FakeError>(42) }).await.ok(), Some(42));
    match breaker.call(|| async { Err::<(), _>(FakeError::Permanent(7)) }).await {
        Err(BreakerError::Inner(FakeError::Permanent(7))) => {}
        other => panic!("expected the inner error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn open_rejects_without_calling_f() {
    let breaker = breaker("rejects", 2);
    let calls = Calls::default();
    for _ in 0..2 {
        let calls = calls.clone();
        let _ = breaker.call(|| async move { Err::<(), _>(FakeError::Transient(calls.next())) }).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(calls.count(), 2);

    for _ in 0..5 {
        let calls = calls.clone();
        let result = breaker.call(|| async move { Err::<(), _>(FakeError::Transient(calls.next())) }).await;
        assert_open(result, "rejects", RESET);
    }
    assert_eq!(calls.count(), 2, "an open breaker must not reach the dependency");

    // retry_in counts down with the clock.
    tokio::time::advance(Duration::from_secs(45)).await;
    assert_open(step(&breaker, Step::Ok).await, "rejects", Duration::from_secs(15));
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn probe_success_closes() {
    let breaker = breaker("probe-success", 1);
    let _ = step(&breaker, Step::Transient).await;
    assert_eq!(breaker.state(), BreakerState::Open);

    tokio::time::advance(RESET - Duration::from_millis(1)).await;
    assert_open(step(&breaker, Step::Ok).await, "probe-success", Duration::from_millis(1));
    // Elapsing the timeout alone does not change the state; the next call becomes the probe.
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(breaker.state(), BreakerState::Open);

    let seen = breaker.call(|| async { Ok::<_, FakeError>(breaker.state()) }).await.ok();
    assert_eq!(seen, Some(BreakerState::HalfOpen), "the probe runs half-open");
    assert_eq!(breaker.state(), BreakerState::Closed);

    // Closed again with a fresh count.
    assert!(step(&breaker, Step::Ok).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn probe_permanent_error_closes() {
    // A 400 from the probe proves the dependency answers; the request was just wrong.
    let breaker = breaker("probe-permanent", 1);
    let _ = step(&breaker, Step::Transient).await;
    tokio::time::advance(RESET).await;
    assert!(matches!(step(&breaker, Step::Permanent).await, Err(BreakerError::Inner(FakeError::Permanent(_)))));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn probe_failure_reopens_with_fresh_timer() {
    let breaker = breaker("probe-failure", 3);
    for _ in 0..3 {
        let _ = step(&breaker, Step::Transient).await;
    }
    tokio::time::advance(RESET).await;

    assert!(matches!(step(&breaker, Step::Transient).await, Err(BreakerError::Inner(FakeError::Transient(_)))));
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_open(step(&breaker, Step::Ok).await, "probe-failure", RESET);

    tokio::time::advance(RESET - Duration::from_millis(1)).await;
    assert_open(step(&breaker, Step::Ok).await, "probe-failure", Duration::from_millis(1));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(step(&breaker, Step::Ok).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn only_one_probe_at_a_time() {
    let breaker = breaker("one-probe", 1);
    let _ = step(&breaker, Step::Transient).await;
    tokio::time::advance(RESET).await;

    let calls = Calls::default();
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let probe = tokio::spawn({
        let breaker = breaker.clone();
        let calls = calls.clone();
        async move {
            breaker
                .call(|| async move {
                    calls.next();
                    let _ = entered_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, FakeError>("probe")
                })
                .await
        }
    });
    entered_rx.await.expect("probe starts");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);

    // Concurrent callers while the probe is in flight are turned away without calling f.
    let others: Vec<_> = (0..5)
        .map(|_| {
            let breaker = breaker.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                breaker
                    .call(|| async move {
                        calls.next();
                        Ok::<_, FakeError>("other")
                    })
                    .await
            })
        })
        .collect();
    for other in others {
        let result = other.await.expect("task completes");
        match result {
            Err(BreakerError::Open { retry_in, .. }) => assert_eq!(retry_in, RESET),
            other => panic!("expected Open during the probe, got {other:?}"),
        }
    }
    assert_eq!(calls.count(), 1, "only the probe reached the dependency");

    release_tx.send(()).expect("probe is waiting");
    assert_eq!(probe.await.expect("probe completes").ok(), Some("probe"));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn cancelled_probe_reopens() {
    let breaker = breaker("cancelled-probe", 1);
    let _ = step(&breaker, Step::Transient).await;
    tokio::time::advance(RESET).await;

    // A dependency that hangs: the caller's own timeout drops the probe.
    let timed_out =
        tokio::time::timeout(Duration::from_secs(5), breaker.call(std::future::pending::<Result<(), FakeError>>)).await;
    assert!(timed_out.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_open(step(&breaker, Step::Ok).await, "cancelled-probe", RESET);
}

#[tokio::test(start_paused = true)]
async fn result_from_before_opening_is_ignored() {
    let breaker = breaker("stale", 1);
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let slow = tokio::spawn({
        let breaker = breaker.clone();
        async move {
            breaker
                .call(|| async move {
                    let _ = entered_tx.send(());
                    let _ = release_rx.await;
                    Ok::<_, FakeError>(())
                })
                .await
        }
    });
    entered_rx.await.expect("slow call starts");

    let _ = step(&breaker, Step::Transient).await;
    assert_eq!(breaker.state(), BreakerState::Open);

    // The slow call was admitted while closed; its late success says nothing about now.
    release_tx.send(()).expect("slow call is waiting");
    assert!(slow.await.expect("slow call completes").is_ok());
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn clones_share_state() {
    let breaker = breaker("clones", 2);
    let clone = breaker.clone();
    let _ = step(&breaker, Step::Transient).await;
    let _ = step(&clone, Step::Transient).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(clone.state(), BreakerState::Open);
    assert_eq!(clone.dependency(), "clones");
}

#[test]
fn breaker_error_classification_and_display() {
    let open: BreakerError<FakeError> =
        BreakerError::Open { dependency: "tiktok".into(), retry_in: Duration::from_secs(3) };
    assert_eq!(open.retryability(), Retryability::Transient);
    assert_eq!(open.to_string(), "circuit breaker for tiktok is open (retry in 3s)");

    let inner = BreakerError::Inner(FakeError::Permanent(1));
    assert_eq!(inner.retryability(), Retryability::Permanent);
    assert_eq!(inner.to_string(), "permanent failure #1");
    assert_eq!(BreakerError::Inner(FakeError::Transient(1)).retryability(), Retryability::Transient);
}

#[test]
fn breaker_error_is_a_std_error_over_tonic_status() {
    let err: BreakerError<tonic::Status> = BreakerError::Inner(tonic::Status::unavailable("down"));
    let err: &dyn std::error::Error = &err;
    assert!(err.to_string().contains("down"));
}
