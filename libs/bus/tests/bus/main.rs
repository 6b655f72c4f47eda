//! The bus against a real nats-server and a real Postgres.

mod batches;
mod consumer;
mod outbox;
mod publish;

use std::time::Duration;

use bus::{Bus, BusConfig, Envelope, Event, Namespace};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// A bus namespace, its streams, and a database schema with the bus tables.
pub struct Harness {
    pub bus: Bus,
    pub pool: PgPool,
    pub db: testkit::TestDb,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_nats_url(&testkit::nats_url()).await
    }

    pub async fn with_nats_url(url: &str) -> Self {
        let db = testkit::TestDb::create().await.expect("test database");
        let config = db::DbConfig {
            url: settings::Secret::new(db.service_url("ingest").expect("url")),
            schema: "ingest".into(),
            max_connections: 8,
            batch_max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        };
        let pool = db::connect(&config).expect("pool");
        db::migrate(&pool, &bus::MIGRATOR).await.expect("bus migrations");
        sqlx::query(
            "CREATE TABLE effects (event_id UUID PRIMARY KEY, aggregate TEXT NOT NULL, n INT NOT NULL, at BIGSERIAL)",
        )
        .execute(&pool)
        .await
        .expect("effects table");
        let namespace = Namespace::new(&testkit::namespace()).expect("namespace");
        let bus = Bus::connect(BusConfig::for_tests(url, namespace), "bus-tests").await.expect("connect");
        bus::streams::ensure_all(&bus).await.expect("streams");
        Self { bus, pool, db }
    }

    pub fn ns(&self) -> &Namespace {
        &self.bus.config().namespace
    }

    pub async fn stream_messages(&self, domain: &str) -> u64 {
        let name = self.ns().stream_name(domain);
        let mut stream = self.bus.jetstream().get_stream(&name).await.expect("stream");
        stream.info().await.expect("info").state.messages
    }

    pub async fn effects(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects").fetch_one(&self.pool).await.expect("count")
    }

    /// Commits `events` through the outbox in one transaction.
    pub async fn commit_events(&self, events: Vec<Envelope<Ticked>>) {
        let mut tx = self.pool.begin().await.expect("begin");
        for event in events {
            bus::outbox::enqueue(&mut tx, self.ns(), event).await.expect("enqueue");
        }
        tx.commit().await.expect("commit");
    }
}

/// The test event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticked {
    pub n: i32,
}

impl Event for Ticked {
    const DOMAIN: &'static str = "order";
    const NAME: &'static str = "ticked";
    const VERSION: u32 = 1;
}

pub fn tick(tenant: Uuid, aggregate: &str, n: i32) -> Envelope<Ticked> {
    Envelope::new(tenant, aggregate, Ticked { n }, None)
}

pub const WAIT: Duration = Duration::from_secs(15);
