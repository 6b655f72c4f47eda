//! Streams declared in code and created (or updated) idempotently at start-up.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

use crate::{Bus, Error};

/// The domains that publish events, each with its own stream.
pub const DOMAINS: &[&str] = &["ingest", "draft", "order", "inventory", "shipping", "notifier"];

fn domain_stream(bus: &Bus, domain: &str) -> Config {
    let cfg = bus.config();
    Config {
        name: cfg.namespace.stream_name(domain),
        subjects: vec![cfg.namespace.domain_subjects(domain)],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_age: cfg.max_age,
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas,
        description: Some(format!("orderflow {domain} events")),
        ..Default::default()
    }
}

fn dead_letter_stream(bus: &Bus) -> Config {
    let cfg = bus.config();
    Config {
        name: cfg.namespace.dead_letter_stream(),
        subjects: vec![format!("{}.dlq.>", cfg.namespace.as_str())],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        // Dead letters wait for an operator: keep them four times as long as events.
        max_age: cfg.max_age * 4,
        duplicate_window: cfg.duplicate_window,
        num_replicas: cfg.replicas,
        description: Some("orderflow dead letters: messages a consumer could not process".into()),
        ..Default::default()
    }
}

/// Creates or updates every stream. Every service calls this at start-up, so the first one up
/// creates them and a changed definition in code is applied on the next deploy.
pub async fn ensure_all(bus: &Bus) -> Result<(), Error> {
    let mut configs: Vec<Config> = DOMAINS.iter().map(|d| domain_stream(bus, d)).collect();
    configs.push(dead_letter_stream(bus));
    for config in configs {
        bus.jetstream()
            .create_or_update_stream(config.clone())
            .await
            .map_err(|err| Error::JetStream(format!("ensure stream {}: {err}", config.name)))?;
    }
    Ok(())
}

/// Keeps trying [`ensure_all`] until it succeeds or `token` is cancelled: a service starts during a
/// NATS outage and its relay and consumers wait here for the bus to come back.
pub async fn ensure_all_eventually(bus: &Bus, token: &tokio_util::sync::CancellationToken) -> bool {
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match ensure_all(bus).await {
            Ok(()) => return true,
            Err(err) => tracing::warn!(error = %err, ?delay, "streams not ready; retrying"),
        }
        tokio::select! {
            _ = token.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}
