//! Prometheus export of breaker state.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use resilience::{BreakerConfig, CircuitBreaker};
use tokio::sync::oneshot;

use crate::support::FakeError;

fn render(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).expect("encoding into a String cannot fail");
    out
}

fn state_line(dependency: &str, value: u8) -> String {
    format!("circuit_breaker_state{{dependency=\"{dependency}\"}} {value}")
}

fn rejected_line(dependency: &str, value: u32) -> String {
    format!("circuit_breaker_rejected_total{{dependency=\"{dependency}\"}} {value}")
}

#[tokio::test(start_paused = true)]
async fn state_gauge_follows_the_breaker() {
    let name = "metrics-gauge";
    let breaker =
        CircuitBreaker::new(name, BreakerConfig { failure_threshold: 1, reset_timeout: Duration::from_secs(1) });
    let mut registry = Registry::default();
    breaker.register_metrics(&mut registry);

    let text = render(&registry);
    assert!(text.contains("# TYPE circuit_breaker_state gauge"), "{text}");
    assert!(text.contains(&state_line(name, 0)), "{text}");
    assert!(text.contains(&rejected_line(name, 0)), "{text}");

    let _ = breaker.call(|| async { Err::<(), _>(FakeError::Transient(1)) }).await;
    let _ = breaker.call(|| async { Ok::<_, FakeError>(()) }).await;
    let text = render(&registry);
    assert!(text.contains(&state_line(name, 1)), "{text}");
    assert!(text.contains(&rejected_line(name, 1)), "{text}");

    tokio::time::advance(Duration::from_secs(1)).await;
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let probe = tokio::spawn({
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
    entered_rx.await.expect("probe starts");
    assert!(render(&registry).contains(&state_line(name, 2)));

    release_tx.send(()).expect("probe is waiting");
    assert!(probe.await.expect("probe completes").is_ok());
    let text = render(&registry);
    assert!(text.contains(&state_line(name, 0)), "{text}");
    assert!(text.contains(&rejected_line(name, 1)), "{text}");
}

#[tokio::test(start_paused = true)]
async fn several_breakers_share_one_family_per_registry() {
    let payments = CircuitBreaker::new("metrics-shared-a", BreakerConfig::default());
    let marketplace = CircuitBreaker::new("metrics-shared-b", BreakerConfig::default());
    // Like telemetry's registry: constant labels on every series.
    let mut registry = Registry::with_labels([("service".into(), "order".into())].into_iter());
    payments.register_metrics(&mut registry);
    marketplace.register_metrics(&mut registry);
    payments.register_metrics(&mut registry);

    let text = render(&registry);
    assert_eq!(text.matches("# TYPE circuit_breaker_state gauge").count(), 1, "{text}");
    assert_eq!(text.matches("# TYPE circuit_breaker_rejected counter").count(), 1, "{text}");
    assert!(text.contains("dependency=\"metrics-shared-a\""), "{text}");
    assert!(text.contains("dependency=\"metrics-shared-b\""), "{text}");

    // A second registry (another test, another application) gets its own registration.
    let mut other = Registry::default();
    payments.register_metrics(&mut other);
    assert!(render(&other).contains(&state_line("metrics-shared-a", 0)));
}
