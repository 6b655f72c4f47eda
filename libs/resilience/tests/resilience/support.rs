//! A controllable error type and call counters shared by the suites.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{Classify, Retryability};

/// The attempt number travels in the error so tests can tell which failure came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeError {
    Transient(u32),
    Permanent(u32),
}

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FakeError::Transient(n) => write!(f, "transient failure #{n}"),
            FakeError::Permanent(n) => write!(f, "permanent failure #{n}"),
        }
    }
}

impl Classify for FakeError {
    fn retryability(&self) -> Retryability {
        match self {
            FakeError::Transient(_) => Retryability::Transient,
            FakeError::Permanent(_) => Retryability::Permanent,
        }
    }
}

/// Counts calls; clones share the count so closures can own one.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<AtomicU32>);

impl Calls {
    /// Records a call and returns its 1-based number.
    pub fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}
