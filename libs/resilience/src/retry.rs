//! The one retry policy for every outbound call: capped exponential backoff that repeats only transient
//! failures.

use std::ffi::OsString;
use std::fmt::Display;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable, TokioSleeper};

use crate::classify::{Classify, Retryability};
use crate::env;

/// How often and how patiently to repeat a failed call.
///
/// The delay before retry `n` (1-based) is `base_delay * factor^(n-1)`, capped at `max_delay`. With
/// `jitter` the delay is drawn uniformly from `[delay / 2, delay]`, so it never exceeds the cap while
/// still spreading out callers that failed together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first. `0` behaves like `1`: the call is always made once.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay: Duration,
    /// Upper bound for any single delay, jitter included.
    pub max_delay: Duration,
    /// Growth of the delay from one retry to the next.
    pub factor: f32,
    /// Randomise delays so that many callers failing at once do not retry in lockstep.
    pub jitter: bool,
}

impl RetryPolicy {
    /// The product default for external marketplace APIs: 5 attempts, 1 s doubling to at most 30 s,
    /// jittered. Marketplaces rate-limit aggressively, so we wait long rather than often.
    pub const fn external_api() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            jitter: true,
        }
    }

    /// For our own gRPC services and NATS: they usually recover within a pod restart or a leader
    /// election, so retries are quick and few, and the caller's own deadline stays meaningful.
    pub const fn internal() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            factor: 2.0,
            jitter: true,
        }
    }

    /// Overrides `default` with `{prefix}_MAX_ATTEMPTS`, `{prefix}_BASE_DELAY_MS` and
    /// `{prefix}_MAX_DELAY_MS` where they are set. Factor and jitter are not configurable: they are
    /// part of the shape of the policy, not its tuning.
    pub fn from_env(prefix: &str, default: RetryPolicy) -> Result<RetryPolicy, env::Error> {
        Self::from_lookup(prefix, default, env::process)
    }

    /// [`RetryPolicy::from_env`] with variables taken from `lookup` instead of the process
    /// environment (a config map, or a test that must not mutate global state).
    pub fn from_lookup(
        prefix: &str,
        default: RetryPolicy,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<RetryPolicy, env::Error> {
        let max_attempts = env::count(&lookup, &format!("{prefix}_MAX_ATTEMPTS"))?;
        let base_delay = env::millis(&lookup, &format!("{prefix}_BASE_DELAY_MS"))?;
        let max_delay = env::millis(&lookup, &format!("{prefix}_MAX_DELAY_MS"))?;
        let policy = RetryPolicy {
            max_attempts: max_attempts.unwrap_or(default.max_attempts),
            base_delay: base_delay.unwrap_or(default.base_delay),
            max_delay: max_delay.unwrap_or(default.max_delay),
            ..default
        };
        // A base above the cap is almost certainly a typo in one of the two variables.
        if policy.base_delay > policy.max_delay {
            return Err(env::Error::BaseDelayAboveMax { base: policy.base_delay, max: policy.max_delay });
        }
        Ok(policy)
    }

    /// Runs `f` until it succeeds, fails permanently, or `max_attempts` are used up; returns the
    /// last error in the latter two cases.
    ///
    /// Each retry is logged at `warn` with the operation name. The final error is not logged here:
    /// it is returned to the caller, who handles (and logs) it.
    pub async fn retry<T, E, F, Fut>(&self, operation_name: &str, f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify + Display,
    {
        self.retry_if(operation_name, f, |err: &E| err.retryability() == Retryability::Transient).await
    }

    /// The retry loop with a caller-chosen notion of "worth repeating"; the breaker combinator needs
    /// one that differs from plain classification.
    pub(crate) async fn retry_if<T, E, F, Fut>(
        &self,
        operation_name: &str,
        f: F,
        should_retry: impl FnMut(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let max_attempts = self.max_attempts.max(1);
        let retries = usize::try_from(max_attempts - 1).unwrap_or(usize::MAX);
        // Jitter is applied below rather than by backon: backon's jitter adds up to 100% on top of
        // the delay and so breaks the cap.
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_max_times(retries);
        let (max_delay, jitter) = (self.max_delay, self.jitter);
        let mut failed_attempts = 0u32;

        f.retry(backoff)
            .sleep(TokioSleeper)
            .when(should_retry)
            .adjust(move |_, delay| {
                delay.map(|delay| {
                    // backon does not cap the very first delay, so a base above the cap is
                    // clamped here.
                    let delay = whole_millis(delay.min(max_delay));
                    if jitter { whole_millis(equal_jitter(delay)) } else { delay }
                })
            })
            .notify(|err, delay| {
                failed_attempts += 1;
                tracing::warn!(
                    operation = operation_name,
                    attempt = failed_attempts,
                    max_attempts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %err,
                    "transient failure, retrying"
                );
            })
            .await
    }
}

/// Rounds to the nearest millisecond, the unit delays are configured in. backon computes delays in
/// `f32`, which turns 200 ms into 200.000003 ms, and tokio's millisecond timer would round that up
/// to 201 ms.
fn whole_millis(delay: Duration) -> Duration {
    let millis = (delay.as_nanos() + 500_000) / 1_000_000;
    u64::try_from(millis).map_or(delay, Duration::from_millis)
}

/// A delay drawn uniformly from `[delay / 2, delay]`: keeps at least half the intended back-off (we
/// are usually waiting out a rate limit) while spreading callers apart.
fn equal_jitter(delay: Duration) -> Duration {
    let scale = 0.5 + 0.5 * fastrand::f64();
    Duration::try_from_secs_f64(delay.as_secs_f64() * scale).map_or(delay, |jittered| jittered.min(delay))
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
    fn product_defaults() {
        let external = RetryPolicy::external_api();
        assert_eq!(external.max_attempts, 5);
        assert_eq!(external.base_delay, Duration::from_secs(1));
        assert_eq!(external.max_delay, Duration::from_secs(30));
        assert_eq!(external.factor, 2.0);
        assert!(external.jitter);

        let internal = RetryPolicy::internal();
        assert!(internal.base_delay <= internal.max_delay);
        assert!(internal.max_attempts >= 2);
    }

    #[test]
    fn from_lookup_without_variables_keeps_default() {
        let policy = RetryPolicy::from_lookup("TIKTOK", RetryPolicy::external_api(), lookup(&[]));
        assert_eq!(policy, Ok(RetryPolicy::external_api()));
    }

    #[test]
    fn from_lookup_overrides_what_is_set() {
        let policy = RetryPolicy::from_lookup(
            "TIKTOK",
            RetryPolicy::external_api(),
            lookup(&[
                ("TIKTOK_MAX_ATTEMPTS", "3"),
                ("TIKTOK_BASE_DELAY_MS", " 1 "),
                ("TIKTOK_MAX_DELAY_MS", "10"),
                // Another prefix must not leak in.
                ("SHOPEE_MAX_ATTEMPTS", "9"),
            ]),
        );
        assert_eq!(
            policy,
            Ok(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(10),
                ..RetryPolicy::external_api()
            })
        );
    }

    #[test]
    fn from_lookup_rejects_bad_values() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("P_MAX_ATTEMPTS", "three")], "P_MAX_ATTEMPTS"),
            (&[("P_MAX_ATTEMPTS", "0")], "P_MAX_ATTEMPTS"),
            (&[("P_MAX_ATTEMPTS", "-1")], "P_MAX_ATTEMPTS"),
            (&[("P_MAX_ATTEMPTS", "")], "P_MAX_ATTEMPTS"),
            (&[("P_BASE_DELAY_MS", "1.5")], "P_BASE_DELAY_MS"),
            (&[("P_BASE_DELAY_MS", "1s")], "P_BASE_DELAY_MS"),
            (&[("P_MAX_DELAY_MS", "-5")], "P_MAX_DELAY_MS"),
        ];
        for (vars, bad_var) in cases {
            let result = RetryPolicy::from_lookup("P", RetryPolicy::internal(), lookup(vars));
            match result {
                Err(env::Error::Invalid { var, .. }) => assert_eq!(var, *bad_var, "{vars:?}"),
                other => panic!("{vars:?}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn from_lookup_rejects_base_above_max() {
        let result = RetryPolicy::from_lookup(
            "P",
            RetryPolicy::internal(),
            lookup(&[("P_BASE_DELAY_MS", "500"), ("P_MAX_DELAY_MS", "100")]),
        );
        assert_eq!(
            result,
            Err(env::Error::BaseDelayAboveMax { base: Duration::from_millis(500), max: Duration::from_millis(100) })
        );
    }

    #[cfg(unix)]
    #[test]
    fn from_lookup_rejects_non_unicode() {
        use std::os::unix::ffi::OsStringExt;
        let result = RetryPolicy::from_lookup("P", RetryPolicy::internal(), |key| {
            (key == "P_MAX_ATTEMPTS").then(|| OsString::from_vec(vec![0xff, 0xfe]))
        });
        assert_eq!(result, Err(env::Error::NotUnicode { var: "P_MAX_ATTEMPTS".to_string() }));
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // Tests cannot set variables (that is `unsafe` and races other tests), so this only checks
        // that an unset prefix falls back to the default through the real lookup.
        let policy = RetryPolicy::from_env("RESILIENCE_TEST_SURELY_UNSET_PREFIX", RetryPolicy::internal());
        assert_eq!(policy, Ok(RetryPolicy::internal()));
    }

    #[test]
    fn whole_millis_rounds_to_nearest() {
        let cases = [
            (Duration::from_nanos(200_000_003), Duration::from_millis(200)),
            (Duration::from_micros(199_600), Duration::from_millis(200)),
            (Duration::from_micros(1_400), Duration::from_millis(1)),
            (Duration::ZERO, Duration::ZERO),
        ];
        for (input, expected) in cases {
            assert_eq!(whole_millis(input), expected, "{input:?}");
        }
        assert_eq!(whole_millis(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn equal_jitter_stays_within_half_and_full_delay() {
        let delay = Duration::from_millis(800);
        for _ in 0..1_000 {
            let jittered = equal_jitter(delay);
            assert!(jittered >= delay / 2 && jittered <= delay, "{jittered:?}");
        }
        assert_eq!(equal_jitter(Duration::ZERO), Duration::ZERO);
        assert!(equal_jitter(Duration::MAX) <= Duration::MAX);
    }
}
