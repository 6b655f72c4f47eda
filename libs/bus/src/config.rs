//! Bus settings, from the environment with local defaults.

use std::time::Duration;

use settings::Env;

use crate::Namespace;

#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    /// Prefix of every subject and stream; tests use a unique one each.
    pub namespace: Namespace,
    /// Stream replicas: 1 locally, 3 in a production cluster.
    pub replicas: usize,
    /// Streams keep events this long (limits retention).
    pub max_age: Duration,
    /// JetStream remembers `Nats-Msg-Id`s this long; the inbox covers everything beyond.
    pub duplicate_window: Duration,
    /// How long a consumer may hold a message before JetStream redelivers it.
    pub ack_wait: Duration,
    /// Deliveries of one message before it is dead-lettered.
    pub max_deliver: u32,
    /// Delay before each redelivery after a transient failure; the last one repeats.
    pub redelivery_backoff: Vec<Duration>,
    /// The outbox relay's idle poll interval.
    pub relay_poll: Duration,
    /// After a poll that found rows but not a full batch, the relay waits this long before the
    /// next, so that under steady load a poll carries more rows (each costs two statements
    /// and a publish round trip, whatever it carries). Adds at most this to an event's delivery.
    pub relay_linger: Duration,
    /// Published outbox rows and inbox records are kept this long, then pruned.
    pub outbox_retention: Duration,
    pub inbox_retention: Duration,
    /// How the outbox relay retries a failed publish before backing off to its poll.
    pub publish_retry: resilience::RetryPolicy,
}

impl BusConfig {
    pub fn from_env(env: &Env) -> Result<Self, settings::Error> {
        let namespace: String = env.get("ORDERFLOW_BUS_NAMESPACE", "orderflow".to_string())?;
        let namespace = Namespace::new(&namespace)
            .map_err(|reason| settings::Error::Invalid { key: "ORDERFLOW_BUS_NAMESPACE".into(), reason })?;
        let backoff_base = env.millis("ORDERFLOW_BUS_REDELIVERY_BASE_MS", Duration::from_secs(1))?;
        Ok(Self {
            url: env.get("NATS_URL", "nats://127.0.0.1:4222".to_string())?,
            namespace,
            replicas: env.get("ORDERFLOW_BUS_REPLICAS", 1)?,
            max_age: env.millis("ORDERFLOW_BUS_MAX_AGE_MS", Duration::from_secs(7 * 24 * 3600))?,
            duplicate_window: env.millis("ORDERFLOW_BUS_DUPLICATE_WINDOW_MS", Duration::from_secs(120))?,
            ack_wait: env.millis("ORDERFLOW_BUS_ACK_WAIT_MS", Duration::from_secs(30))?,
            // With a 1 s base: 1, 2, 4 … 32, then 60 s between deliveries: twenty deliveries ride
            // out about a quarter of an hour of a dependency being down before dead-lettering.
            max_deliver: env.get("ORDERFLOW_BUS_MAX_DELIVER", 20)?,
            redelivery_backoff: (0..7).map(|i| (backoff_base * 2u32.pow(i)).min(Duration::from_secs(60))).collect(),
            relay_poll: env.millis("ORDERFLOW_BUS_RELAY_POLL_MS", Duration::from_millis(20))?,
            relay_linger: env.millis("ORDERFLOW_BUS_RELAY_LINGER_MS", Duration::from_millis(5))?,
            outbox_retention: env.millis("ORDERFLOW_OUTBOX_RETENTION_MS", Duration::from_secs(24 * 3600))?,
            // Platforms retry for up to a week; keep processed ids a little longer than that.
            inbox_retention: env.millis("ORDERFLOW_INBOX_RETENTION_MS", Duration::from_secs(8 * 24 * 3600))?,
            publish_retry: resilience::RetryPolicy::from_env(
                "ORDERFLOW_BUS_PUBLISH",
                resilience::RetryPolicy::internal(),
            )
            .map_err(|e| settings::Error::Invalid { key: "ORDERFLOW_BUS_PUBLISH_*".into(), reason: e.to_string() })?,
        })
    }

    /// Settings for tests: a given namespace and timings in milliseconds, not seconds.
    pub fn for_tests(url: &str, namespace: Namespace) -> Self {
        Self {
            url: url.to_string(),
            namespace,
            replicas: 1,
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(60),
            ack_wait: Duration::from_millis(1500),
            max_deliver: 3,
            redelivery_backoff: vec![Duration::from_millis(50), Duration::from_millis(100)],
            relay_poll: Duration::from_millis(10),
            relay_linger: Duration::ZERO,
            outbox_retention: Duration::from_secs(3600),
            inbox_retention: Duration::from_secs(3600),
            publish_retry: resilience::RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                factor: 2.0,
                jitter: false,
            },
        }
    }

    /// The redelivery delay after the `delivered`-th attempt failed.
    pub fn backoff_after(&self, delivered: u32) -> Duration {
        let index = delivered.saturating_sub(1) as usize;
        self.redelivery_backoff.get(index).or(self.redelivery_backoff.last()).copied().unwrap_or(Duration::from_secs(1))
    }
}
