//! One Prometheus registry per running application, rendered as text for `/metrics`.

use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

/// Cheap to clone; every component registers its metrics here at start-up.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let registry = Registry::with_labels(
            [(std::borrow::Cow::Borrowed("service"), std::borrow::Cow::Owned(service.to_string()))].into_iter(),
        );
        Self { registry: Arc::new(Mutex::new(registry)) }
    }

    /// Registers metrics; a poisoned lock only means another registration panicked, so carry on.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut registry)
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with_registry(|registry| {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, registry);
        });
        out
    }
}
