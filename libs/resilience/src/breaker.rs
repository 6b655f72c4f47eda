//! A circuit breaker per named dependency: stops calling a dependency that is down, then lets a single
//! probe find out whether it is back.
//!
//! ```text
//!   Closed ──failure_threshold consecutive transient failures──▶ Open
//!   Open ──reset_timeout elapsed, next call becomes the probe──▶ HalfOpen
//!   HalfOpen ──probe answered──▶ Closed        HalfOpen ──probe failed──▶ Open (fresh timer)
//! ```

mod metrics;

use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::classify::{Classify, Retryability};
use crate::env;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker. `0` behaves like `1`.
    pub failure_threshold: u32,
    /// How long an open breaker rejects calls before letting a probe through.
    pub reset_timeout: Duration,
}

impl Default for BreakerConfig {
    /// The product default: open after 10 consecutive failures, probe again after 60 s.
    fn default() -> Self {
        Self { failure_threshold: 10, reset_timeout: Duration::from_secs(60) }
    }
}

impl BreakerConfig {
    /// Overrides `default` with `{prefix}_BREAKER_FAILURES` and `{prefix}_BREAKER_RESET_MS` where
    /// they are set.
    pub fn from_env(prefix: &str, default: BreakerConfig) -> Result<BreakerConfig, env::Error> {
        Self::from_lookup(prefix, default, env::process)
    }

    /// [`BreakerConfig::from_env`] with variables taken from `lookup` instead of the process
    /// environment.
    pub fn from_lookup(
        prefix: &str,
        default: BreakerConfig,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<BreakerConfig, env::Error> {
        let failure_threshold = env::count(&lookup, &format!("{prefix}_BREAKER_FAILURES"))?;
        let reset_timeout = env::millis(&lookup, &format!("{prefix}_BREAKER_RESET_MS"))?;
        Ok(BreakerConfig {
            failure_threshold: failure_threshold.unwrap_or(default.failure_threshold),
            reset_timeout: reset_timeout.unwrap_or(default.reset_timeout),
        })
    }
}

/// What a breaker currently lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; transient failures are counted.
    Closed,
    /// Calls are rejected without reaching the dependency.
    Open,
    /// One probe call is in flight; everyone else is rejected until it settles.
    HalfOpen,
}

impl BreakerState {
    fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The failure of a call made through a [`CircuitBreaker`].
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker rejected the call; the dependency was not contacted.
    #[error("circuit breaker for {dependency} is open (retry in {retry_in:?})")]
    Open {
        dependency: String,
        /// The earliest moment a call could get through. While a probe is in flight this is the
        /// full reset timeout: the worst case, should the probe fail.
        retry_in: Duration,
    },
    /// The call was made and failed.
    #[error(transparent)]
    Inner(E),
}

impl<E: Classify> Classify for BreakerError<E> {
    /// An open breaker is transient: a background loop (an outbox relay, a consumer that naks with a
    /// delay) should wait it out. Request paths that must fail fast use
    /// [`call_with_retry`](crate::call_with_retry), which never retries `Open`.
    fn retryability(&self) -> Retryability {
        match self {
            BreakerError::Open { .. } => Retryability::Transient,
            BreakerError::Inner(inner) => inner.retryability(),
        }
    }
}

/// Guards one named dependency. Cheap to clone; clones share state, so create one per dependency at
/// start-up and hand out clones.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    dependency: String,
    config: BreakerConfig,
    shared: Mutex<Shared>,
    metrics: metrics::Series,
}

struct Shared {
    phase: Phase,
    /// Bumped on every transition, so a call admitted before a transition cannot affect the state
    /// after it (a slow success from before the breaker opened must not close it).
    generation: u64,
}

enum Phase {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight; it always is while in this phase.
    HalfOpen,
}

impl Phase {
    fn state(&self) -> BreakerState {
        match self {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

/// What a finished call says about the dependency's health.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Succeeded,
    /// Failed permanently: the dependency answered, our request was wrong.
    Answered,
    /// Failed transiently: evidence of an outage.
    Failed,
}

struct Transition {
    from: BreakerState,
    to: BreakerState,
}

impl CircuitBreaker {
    /// `dependency` names the thing being guarded ("tiktok-shop", "inventory-grpc"); it labels logs
    /// and metrics, so it must be unique in the process.
    pub fn new(dependency: &str, config: BreakerConfig) -> Self {
        let metrics = metrics::Series::for_dependency(dependency);
        metrics.set_state(BreakerState::Closed);
        Self {
            inner: Arc::new(Inner {
                dependency: dependency.to_string(),
                config,
                shared: Mutex::new(Shared { phase: Phase::Closed { consecutive_failures: 0 }, generation: 0 }),
                metrics,
            }),
        }
    }

    pub fn dependency(&self) -> &str {
        &self.inner.dependency
    }

    pub fn config(&self) -> BreakerConfig {
        self.inner.config
    }

    /// The current state. An open breaker whose timeout has elapsed still reports `Open`: it moves
    /// to `HalfOpen` when the next call arrives to act as the probe.
    pub fn state(&self) -> BreakerState {
        self.inner.lock().phase.state()
    }

    /// Calls `f` unless the breaker is open. Only [`Retryability::Transient`] errors count as
    /// failures; a permanent error proves the dependency is up, so it neither trips a closed breaker
    /// nor keeps a half-open one from closing.
    ///
    /// If the future is dropped while it is the half-open probe (a caller's timeout, shutdown), the
    /// probe counts as failed: a dependency that hangs is as down as one that refuses.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let permit = self.inner.admit().map_err(|retry_in| {
            self.inner.metrics.record_rejection();
            BreakerError::Open { dependency: self.inner.dependency.clone(), retry_in }
        })?;
        let result = f().await;
        permit.settle(match &result {
            Ok(_) => Outcome::Succeeded,
            Err(err) => match err.retryability() {
                Retryability::Transient => Outcome::Failed,
                Retryability::Permanent => Outcome::Answered,
            },
        });
        result.map_err(BreakerError::Inner)
    }

    /// Exports `circuit_breaker_state{dependency}` (0 closed, 1 open, 2 half-open) and
    /// `circuit_breaker_rejected_total{dependency}`.
    ///
    /// Every breaker in the process writes into the same two families, so calling this for several
    /// breakers with one registry registers the families once and exports them all.
    pub fn register_metrics(&self, registry: &mut Registry) {
        metrics::register(registry);
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("dependency", &self.inner.dependency)
            .field("config", &self.inner.config)
            .field("state", &self.state())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing panics while the lock is held, and every update leaves the state consistent, so
        // a poisoned lock still holds a usable state.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets a call through, or says how long until one could get through.
    fn admit(&self) -> Result<Permit<'_>, Duration> {
        let now = Instant::now();
        let mut shared = self.lock();
        let (probe, transition) = match shared.phase {
            Phase::Closed { .. } => (false, None),
            Phase::Open { until } if now < until => return Err(until - now),
            Phase::Open { .. } => (true, Some(self.transition(&mut shared, Phase::HalfOpen))),
            Phase::HalfOpen => return Err(self.config.reset_timeout),
        };
        let generation = shared.generation;
        drop(shared);
        if let Some(transition) = transition {
            self.announce(&transition);
        }
        Ok(Permit { inner: self, generation, probe, settled: false })
    }

    fn record(&self, generation: u64, outcome: Outcome) {
        let mut shared = self.lock();
        if shared.generation != generation {
            return;
        }
        let next = match (&mut shared.phase, outcome) {
            (Phase::Closed { consecutive_failures }, Outcome::Succeeded) => {
                *consecutive_failures = 0;
                None
            }
            // Neither an outage nor proof that an ongoing one is over for the other callers.
            (Phase::Closed { .. }, Outcome::Answered) => None,
            (Phase::Closed { consecutive_failures }, Outcome::Failed) => {
                *consecutive_failures = consecutive_failures.saturating_add(1);
                (*consecutive_failures >= self.config.failure_threshold.max(1)).then(|| self.open())
            }
            (Phase::HalfOpen, Outcome::Succeeded | Outcome::Answered) => {
                Some(Phase::Closed { consecutive_failures: 0 })
            }
            (Phase::HalfOpen, Outcome::Failed) => Some(self.open()),
            // Opening bumps the generation, so no admitted call can report into an open breaker.
            (Phase::Open { .. }, _) => None,
        };
        let transition = next.map(|phase| self.transition(&mut shared, phase));
        drop(shared);
        if let Some(transition) = transition {
            self.announce(&transition);
        }
    }

    fn open(&self) -> Phase {
        Phase::Open { until: Instant::now() + self.config.reset_timeout }
    }

    /// Changes phase under the lock; the gauge is set here too so it can never lag behind a later
    /// transition.
    fn transition(&self, shared: &mut Shared, to: Phase) -> Transition {
        let from = shared.phase.state();
        shared.phase = to;
        shared.generation = shared.generation.wrapping_add(1);
        let to = shared.phase.state();
        self.metrics.set_state(to);
        Transition { from, to }
    }

    /// Logs outside the lock, so a slow log sink never blocks callers of the dependency.
    fn announce(&self, transition: &Transition) {
        let (dependency, from, to) = (self.dependency.as_str(), transition.from.as_str(), transition.to.as_str());
        match transition.to {
            BreakerState::Open => tracing::warn!(
                dependency,
                from,
                to,
                reset_timeout_ms = u64::try_from(self.config.reset_timeout.as_millis()).unwrap_or(u64::MAX),
                "circuit breaker opened"
            ),
            BreakerState::HalfOpen => {
                tracing::info!(dependency, from, to, "circuit breaker probing")
            }
            BreakerState::Closed => tracing::info!(dependency, from, to, "circuit breaker closed"),
        }
    }
}

/// One admitted call. Settling it reports the outcome; dropping it unsettled (the caller's future
/// was cancelled) fails a probe so the breaker cannot stay half-open forever.
struct Permit<'a> {
    inner: &'a Inner,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.inner.record(self.generation, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.inner.record(self.generation, Outcome::Failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> =
            vars.iter().map(|(k, v)| ((*k).to_string(), OsString::from(*v))).collect();
        move |key| vars.get(key).cloned()
    }

    #[test]
    fn default_is_the_product_spec() {
        assert_eq!(
            BreakerConfig::default(),
            BreakerConfig { failure_threshold: 10, reset_timeout: Duration::from_secs(60) }
        );
    }

    #[test]
    fn from_lookup_overrides_what_is_set() {
        let cases: &[(&[(&str, &str)], BreakerConfig)] = &[
            (&[], BreakerConfig::default()),
            (&[("NATS_BREAKER_FAILURES", "2")], BreakerConfig { failure_threshold: 2, ..BreakerConfig::default() }),
            (
                &[("NATS_BREAKER_FAILURES", "3"), ("NATS_BREAKER_RESET_MS", "5")],
                BreakerConfig { failure_threshold: 3, reset_timeout: Duration::from_millis(5) },
            ),
        ];
        for (vars, expected) in cases {
            let config = BreakerConfig::from_lookup("NATS", BreakerConfig::default(), lookup(vars));
            assert_eq!(config, Ok(*expected), "{vars:?}");
        }
    }

    #[test]
    fn from_lookup_rejects_bad_values() {
        let cases: &[(&str, &str)] = &[
            ("NATS_BREAKER_FAILURES", "0"),
            ("NATS_BREAKER_FAILURES", "ten"),
            ("NATS_BREAKER_RESET_MS", "60s"),
            ("NATS_BREAKER_RESET_MS", "-1"),
        ];
        for &(var, value) in cases {
            let config = BreakerConfig::from_lookup("NATS", BreakerConfig::default(), lookup(&[(var, value)]));
            assert_eq!(
                config,
                Err(env::Error::Invalid {
                    var: var.to_string(),
                    value: value.to_string(),
                    expected: match var {
                        "NATS_BREAKER_FAILURES" => "a whole number of at least 1",
                        _ => "a whole number of milliseconds",
                    },
                }),
            );
        }
    }

    #[test]
    fn from_env_falls_back_to_default_when_unset() {
        let config = BreakerConfig::from_env("RESILIENCE_TEST_SURELY_UNSET_PREFIX", BreakerConfig::default());
        assert_eq!(config, Ok(BreakerConfig::default()));
    }
}
