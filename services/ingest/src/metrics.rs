//! What ingest counts: webhooks by outcome, events by result, and commit batches.

use events::ingest::Platform;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::outbound::webhooks::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub platform: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub platform: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    pub platform: &'static str,
}

#[derive(Clone)]
pub struct IngestMetrics {
    pub webhooks: Family<WebhookLabels, Counter>,
    /// Webhooks whose signature matched only the app secret being rotated out.
    pub previous_secret: Family<PlatformLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
}

impl IngestMetrics {
    pub fn register(metrics: &telemetry::Metrics) -> Self {
        let this = Self {
            webhooks: Family::default(),
            previous_secret: Family::default(),
            events: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        };
        metrics.with_registry(|registry| {
            registry.register("ingest_webhooks", "Webhook requests by platform and outcome", this.webhooks.clone());
            registry.register(
                "ingest_webhooks_previous_secret",
                "Webhooks signed with the app secret being rotated out (META_APP_SECRET_PREVIOUS, \
                 TIKTOK_APP_SECRET_PREVIOUS): when it stays at zero, the old secret can go",
                this.previous_secret.clone(),
            );
            registry.register(
                "ingest_events",
                "Normalised events by result: published, duplicate, parked (unknown or disabled channel)",
                this.events.clone(),
            );
            registry.register("ingest_commit_batch_size", "Webhooks stored per transaction", this.batch_size.clone());
            registry.register("ingest_commit_seconds", "Time to store one batch", this.commit_seconds.clone());
        });
        this
    }

    pub fn count_webhook(&self, platform: Platform, outcome: &'static str) {
        self.webhooks.get_or_create(&WebhookLabels { platform: platform.as_str(), outcome }).inc();
    }

    pub fn count_previous_secret(&self, platform: Platform) {
        self.previous_secret.get_or_create(&PlatformLabels { platform: platform.as_str() }).inc();
    }

    pub fn count_events(&self, platform: Platform, outcome: &Outcome) {
        let platform = platform.as_str();
        for (result, n) in
            [("published", outcome.published), ("duplicate", outcome.duplicates), ("parked", outcome.parked)]
        {
            if n > 0 {
                self.events.get_or_create(&EventLabels { platform, result }).inc_by(n as u64);
            }
        }
    }
}
