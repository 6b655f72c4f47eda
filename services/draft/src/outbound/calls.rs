//! What every call to another orderflow service shares: a service token acting for the user,
//! the shared retry policy and a circuit breaker per dependency, and one way to read failures.

use std::time::Duration;

use resilience::{BreakerError, CircuitBreaker, Classify, RetryPolicy, Retryability};
use uuid::Uuid;

/// A failed call, by what the caller can do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The dependency is down or overloaded (after retries), or its breaker is open: try later.
    #[error("{dependency} unavailable: {message}")]
    Unavailable { dependency: &'static str, message: String },
    /// The dependency answered no (a shortage, a bad request): retrying will not help.
    #[error("{dependency} refused: {message}")]
    Refused { dependency: &'static str, code: tonic::Code, message: String },
}

#[derive(Clone)]
pub struct Caller {
    pub dependency: &'static str,
    pub keys: auth::JwtKeys,
    pub retry: RetryPolicy,
    pub breaker: CircuitBreaker,
}

impl Caller {
    pub fn new(
        dependency: &'static str,
        keys: auth::JwtKeys,
        retry: RetryPolicy,
        breaker: resilience::BreakerConfig,
    ) -> Self {
        Self { dependency, keys, retry, breaker: CircuitBreaker::new(dependency, breaker) }
    }

    pub fn request<T>(&self, tenant_id: Uuid, on_behalf_of: Option<&str>, message: T) -> tonic::Request<T> {
        let token = self.keys.mint_service("draft", tenant_id, on_behalf_of, Duration::from_secs(300));
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
        telemetry::propagation::inject_current(&mut |key, value| {
            if let (Ok(key), Ok(value)) =
                (key.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(), value.parse())
            {
                request.metadata_mut().insert(key, value);
            }
        });
        request
    }

    /// Runs a call through the breaker with the shared retry policy.
    pub async fn call<T, F, Fut>(&self, operation: &str, f: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        match resilience::call_with_retry(&self.retry, &self.breaker, operation, f).await {
            Ok(value) => Ok(value),
            Err(BreakerError::Open { .. }) => {
                Err(CallError::Unavailable { dependency: self.dependency, message: "circuit breaker open".into() })
            }
            Err(BreakerError::Inner(status)) => Err(self.failure(&status)),
        }
    }

    /// A refusal (of a call or of one entry of a batch call), by what the caller can do about it.
    pub fn failure(&self, status: &tonic::Status) -> CallError {
        match status.retryability() {
            Retryability::Transient => {
                CallError::Unavailable { dependency: self.dependency, message: status.message().to_string() }
            }
            Retryability::Permanent => CallError::Refused {
                dependency: self.dependency,
                code: status.code(),
                message: status.message().to_string(),
            },
        }
    }

    /// One result per entry of a batch call's answer, in order. Entries a short answer left out
    /// are unavailable: whether they were done is unknown, and retrying them is safe (every
    /// batch call is idempotent per entry).
    pub fn entry_results<T>(
        &self,
        expected: usize,
        results: impl IntoIterator<Item = Result<T, tonic::Status>>,
    ) -> Vec<Result<T, CallError>> {
        let mut out: Vec<Result<T, CallError>> =
            results.into_iter().take(expected).map(|r| r.map_err(|s| self.failure(&s))).collect();
        while out.len() < expected {
            out.push(Err(CallError::Unavailable {
                dependency: self.dependency,
                message: "the batch answer has fewer results than entries".into(),
            }));
        }
        out
    }
}
