//! Load generation: closed loops (C callers, each sending its next request when the last one is
//! answered) for throughput, and open loops (requests scheduled by the clock) for latency at a
//! fixed rate.
//!
//! The open loop measures each latency from the request's *scheduled* time, not from when it was
//! actually sent: when the system (or this client) stalls, the requests that should have gone out
//! meanwhile count their wait, so a stall is not hidden (no coordinated omission).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use crate::figures::Latencies;

/// A request unanswered this long counts as an error, so one stuck call cannot hang the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn answered<Fut: Future<Output = Outcome>>(request: Fut) -> Outcome {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| Outcome::Error(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))
}

/// What became of one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok,
    /// Refused because the stock really is not there: the system said no, correctly.
    Shortage,
    /// Anything else that was not success; the text groups them in the report.
    Error(String),
}

impl Outcome {
    /// A gRPC answer: FAILED_PRECONDITION naming missing stock is a shortage, anything else an error.
    pub fn of_grpc<T>(result: Result<T, tonic::Status>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(status)
                if status.code() == tonic::Code::FailedPrecondition
                    && status.message().contains("not enough stock") =>
            {
                Outcome::Shortage
            }
            Err(status) => Outcome::Error(format!("{:?}: {}", status.code(), first_words(status.message()))),
        }
    }
}

/// Error messages carry ids; the first few words group them.
fn first_words(message: &str) -> String {
    message.split_whitespace().take(12).collect::<Vec<_>>().join(" ")
}

/// The requests of one measured window.
#[derive(Debug, Default)]
pub struct Run {
    pub ok: u64,
    pub shortages: u64,
    pub errors: u64,
    /// Error kinds and how often each happened.
    pub error_kinds: BTreeMap<String, u64>,
    /// Latencies of every request in the window (successes and failures).
    pub latencies: Latencies,
    /// Latencies of successful requests only.
    pub ok_latencies: Latencies,
    /// How long the window lasted.
    pub window: Duration,
    /// Successes including warm-up and stragglers, for integrity checks.
    pub ok_total: u64,
    /// The work ran out before the window ended (a finite set of drafts, orders...).
    pub exhausted: bool,
    /// Open loop only: how far behind schedule the sender fell at worst.
    pub max_send_lag: Duration,
}

impl Run {
    /// Successful requests per second over the window.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    fn count(&mut self, outcome: &Outcome, latency: Duration) {
        self.latencies.record(latency);
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.ok_latencies.record(latency);
            }
            Outcome::Shortage => self.shortages += 1,
            Outcome::Error(kind) => {
                self.errors += 1;
                *self.error_kinds.entry(kind.clone()).or_default() += 1;
            }
        }
    }

    fn absorb(&mut self, other: Run) {
        self.ok += other.ok;
        self.shortages += other.shortages;
        self.errors += other.errors;
        for (kind, n) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += n;
        }
        self.latencies.merge(other.latencies);
        self.ok_latencies.merge(other.ok_latencies);
        self.ok_total += other.ok_total;
    }

    /// "3 x Unavailable: ...; 1 x ..." for the report.
    pub fn error_summary(&self) -> String {
        self.error_kinds.iter().take(4).map(|(kind, n)| format!("{n} x {kind}")).collect::<Vec<_>>().join("; ")
    }
}

/// How long to run: the first `warmup` is not measured.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

/// `concurrency` callers, each sending request `make(n)` (n counts up across all callers) as soon
/// as its previous one is answered, until the window ends or `make` returns `None`.
///
/// Requests answered during warm-up or after the window are not measured.
pub async fn closed_loop<F, Fut>(concurrency: usize, window: Window, make: F) -> Run
where
    F: Fn(u64) -> Option<Fut> + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let deadline = measure_from + window.measure;
    let last_answer = Arc::new(Mutex::new(measure_from));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (make, next, exhausted, last_answer) = (make.clone(), next.clone(), exhausted.clone(), last_answer.clone());
        callers.spawn(async move {
            let mut run = Run::default();
            let mut last = measure_from;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = make(n) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                let sent = Instant::now();
                let outcome = answered(request).await;
                let answered = Instant::now();
                if matches!(outcome, Outcome::Ok) {
                    run.ok_total += 1;
                }
                if answered >= measure_from && answered <= deadline {
                    run.count(&outcome, answered - sent);
                    last = answered;
                }
            }
            let mut shared = last_answer.lock().await;
            *shared = (*shared).max(last);
            run
        });
    }
    let mut run = Run::default();
    while let Some(result) = callers.join_next().await {
        if let Ok(caller) = result {
            run.absorb(caller);
        }
    }
    run.exhausted = exhausted.load(Ordering::Relaxed);
    let end = if run.exhausted { *last_answer.lock().await } else { deadline };
    run.window = end.saturating_duration_since(measure_from);
    run
}

/// Requests at `rate` per second by the clock: request n is due at `start + n / rate`, whatever
/// happened to the earlier ones. `make(n, due)` builds it. At most `max_in_flight` are outstanding;
/// past that the sender waits, and the wait shows in the latencies (measured from `due`).
///
/// Requests due during warm-up are not measured; every request due in the window is waited for.
pub async fn open_loop<F, Fut>(rate: f64, window: Window, max_in_flight: usize, make: F) -> Run
where
    F: Fn(u64, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let end = measure_from + window.measure;
    let mut requests = tokio::task::JoinSet::new();
    let mut run = Run { window: window.measure, ..Default::default() };
    let settle = |run: &mut Run, result: Result<(bool, Outcome, Duration), tokio::task::JoinError>| {
        if let Ok((measured, outcome, latency)) = result {
            if matches!(outcome, Outcome::Ok) {
                run.ok_total += 1;
            }
            if measured {
                run.count(&outcome, latency);
            }
        }
    };
    let mut n: u64 = 0;
    loop {
        let due = start + interval.mul_f64(n as f64);
        if due >= end {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        run.max_send_lag = run.max_send_lag.max(Instant::now().saturating_duration_since(due));
        let request = make(n, due);
        let measured = due >= measure_from;
        requests.spawn(async move {
            let outcome = answered(request).await;
            drop(permit);
            (measured, outcome, Instant::now().saturating_duration_since(due))
        });
        n += 1;
        // Settle what finished so the set does not grow with the run.
        while let Some(done) = requests.try_join_next() {
            settle(&mut run, done);
        }
    }
    while let Some(done) = requests.join_next().await {
        settle(&mut run, done);
    }
    run
}
