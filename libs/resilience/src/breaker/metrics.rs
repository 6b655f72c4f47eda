//! Prometheus export of breaker state.
//!
//! The families are process-wide rather than per breaker: the text format allows a metric family to
//! appear once per scrape, and a service has several breakers sharing one registry. Each breaker owns
//! one series in each family, labelled with its dependency.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::BreakerState;

const STATE: &str = "circuit_breaker_state";
/// The text encoder appends `_total` to counters, so this is exported as
/// `circuit_breaker_rejected_total`.
const REJECTED: &str = "circuit_breaker_rejected";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: String,
}

struct Families {
    state: Family<DependencyLabels, Gauge>,
    rejected: Family<DependencyLabels, Counter>,
}

static FAMILIES: LazyLock<Families> =
    LazyLock::new(|| Families { state: Family::default(), rejected: Family::default() });

/// One breaker's series; handles share their value with the family, so updates need no lookup.
pub(super) struct Series {
    state: Gauge,
    rejected: Counter,
}

impl Series {
    /// Creating both series up front makes a healthy dependency visible as `0` rather than absent.
    pub(super) fn for_dependency(dependency: &str) -> Self {
        let labels = DependencyLabels { dependency: dependency.to_string() };
        Self {
            state: FAMILIES.state.get_or_create_owned(&labels),
            rejected: FAMILIES.rejected.get_or_create_owned(&labels),
        }
    }

    pub(super) fn set_state(&self, state: BreakerState) {
        self.state.set(match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        });
    }

    pub(super) fn record_rejection(&self) {
        self.rejected.inc();
    }
}

/// Registers the families unless `registry` already exports them.
pub(super) fn register(registry: &mut Registry) {
    if already_registered(registry) {
        return;
    }
    registry.register(
        STATE,
        "Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open",
        FAMILIES.state.clone(),
    );
    registry.register(REJECTED, "Calls rejected by an open or probing circuit breaker", FAMILIES.rejected.clone());
}

/// `Registry` cannot be queried for what it holds, so look at what it would export. The caller's
/// breaker has already created its series, so the family is non-empty and would show up if
/// registered.
fn already_registered(registry: &Registry) -> bool {
    let mut exported = String::new();
    // Writing into a String cannot fail; if it somehow did, registering is the safer mistake.
    if encode_registry(&mut exported, registry).is_err() {
        return false;
    }
    let type_line_suffix = format!("{STATE} gauge");
    exported.lines().any(|line| line.starts_with("# TYPE ") && line.ends_with(&type_line_suffix))
}
