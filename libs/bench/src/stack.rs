//! The services under test, in this process, on a fresh database and bus namespace.
//!
//! Each service gets its production configuration (pool sizes, committers, batch sizes, bus
//! timings: what `from_env` gives with nothing set), except what a run must own: its database,
//! its bus namespace, port 0, a one-hour stream retention (the streams are deleted at the end
//! anyway) and a short shutdown deadline. Variables set in the bench's own environment pass
//! through, so a tuning knob can be tried without a rebuild, e.g.
//! `INGEST_MAX_BATCH=256 orderflow-bench ingest`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use service_runtime::ServiceConfig;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// Which services a scenario runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Services {
    pub ingest: bool,
    pub inventory: bool,
    pub order: bool,
    pub draft: bool,
}

/// The services of one run and what they run on.
pub struct Stack {
    pub env: testkit::TestEnv,
    /// A superuser pool on the run's database (every service's schema).
    pub admin: PgPool,
    pub ingest_http: Option<SocketAddr>,
    pub ingest_grpc: Option<String>,
    pub inventory_grpc: Option<String>,
    pub order_grpc: Option<String>,
    pub draft_grpc: Option<String>,
    /// The settings the services run with that throughput depends on, for the report header.
    pub settings: Vec<String>,
    tokens: Vec<CancellationToken>,
    running: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The environment a service reads its configuration from: this run's overrides, then the
/// bench's own environment.
fn environment(env: &testkit::TestEnv, service: &str, extra: &[(&str, String)]) -> anyhow::Result<settings::Env> {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_string(), env.db.service_url(service)?),
        ("NATS_URL".to_string(), testkit::nats_url()),
        ("ORDERFLOW_BUS_NAMESPACE".to_string(), env.namespace.clone()),
        ("ORDERFLOW_HTTP_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("ORDERFLOW_GRPC_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("ORDERFLOW_BUS_MAX_AGE_MS".to_string(), "3600000".to_string()),
        ("ORDERFLOW_SHUTDOWN_DEADLINE_MS".to_string(), "5000".to_string()),
    ]);
    for (key, value) in extra {
        vars.insert(key.to_string(), value.clone());
    }
    Ok(settings::Env::from_lookup(move |key| vars.get(key).cloned().or_else(|| std::env::var(key).ok()))?)
}

async fn launch(app: service_runtime::Application, stack: &mut Stack) -> (SocketAddr, String) {
    let token = app.token();
    let http = app.http_addr;
    let grpc = format!("http://{}", app.grpc_addr);
    stack.running.push(tokio::spawn(app.run_until_stopped()));
    stack.tokens.push(token);
    (http, grpc)
}

impl Stack {
    pub async fn start(services: Services) -> anyhow::Result<Self> {
        let env = testkit::TestEnv::new().await;
        let admin = admin_pool(&env.db.name, 4).await?;
        let mut stack = Stack {
            env,
            admin,
            ingest_http: None,
            ingest_grpc: None,
            inventory_grpc: None,
            order_grpc: None,
            draft_grpc: None,
            settings: Vec::new(),
            tokens: Vec::new(),
            running: Vec::new(),
        };
        if services.inventory {
            let config = inventory::Config::from_env(&environment(&stack.env, "inventory", &[])?)?;
            stack.settings.push(format!(
                "inventory: pool {}, reserve committers {} x batch {}",
                config.common.db.max_connections, config.reserve_committers, config.reserve_max_batch
            ));
            let app = inventory::startup::build(config, CancellationToken::new()).await.context("start inventory")?;
            stack.inventory_grpc = Some(launch(app, &mut stack).await.1);
        }
        if services.order {
            let config = order::Config::from_env(&environment(&stack.env, "order", &[])?)?;
            stack.settings.push(format!(
                "order: pool {}, create committers {} x batch {}, status committers {} x batch {}",
                config.common.db.max_connections,
                config.commits.create_committers,
                config.commits.create_max_batch,
                config.commits.status_committers,
                config.commits.status_max_batch
            ));
            let app = order::startup::build(config, CancellationToken::new()).await.context("start order")?;
            stack.order_grpc = Some(launch(app, &mut stack).await.1);
        }
        if services.draft {
            let urls = [
                ("INVENTORY_GRPC_URL", stack.inventory_grpc.clone().context("draft needs inventory")?),
                ("ORDER_GRPC_URL", stack.order_grpc.clone().context("draft needs order")?),
            ];
            let config = draft::Config::from_env(&environment(&stack.env, "draft", &urls)?)?;
            stack.settings.push(format!(
                "draft: pool {}, {} message lanes, approval committers {} x batch {}",
                config.common.db.max_connections,
                config.message_lanes,
                config.approval_committers,
                config.approval_max_batch
            ));
            let app = draft::startup::build(config, CancellationToken::new()).await.context("start draft")?;
            stack.draft_grpc = Some(launch(app, &mut stack).await.1);
        }
        if services.ingest {
            let config = ingest::Config::from_env(&environment(&stack.env, "ingest", &[])?)?;
            stack.settings.push(format!(
                "ingest: pool {}, committers {} x batch {}",
                config.common.db.max_connections, config.committers, config.max_batch
            ));
            let app = ingest::startup::build(config, CancellationToken::new()).await.context("start ingest")?;
            let (http, grpc) = launch(app, &mut stack).await;
            stack.ingest_http = Some(http);
            stack.ingest_grpc = Some(grpc);
        }
        Ok(stack)
    }

    /// Stops the services, then drops the run's database and deletes its streams.
    pub async fn stop(self) -> anyhow::Result<()> {
        for token in &self.tokens {
            token.cancel();
        }
        for running in self.running {
            let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
        }
        self.admin.close().await;
        let name = self.env.db.name.clone();
        let postgres = admin_pool("postgres", 1).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&postgres)
            .await
            .context("drop the run's database")?;
        postgres.close().await;
        let namespace = bus::Namespace::new(&self.env.namespace).map_err(|e| anyhow::anyhow!(e))?;
        let jetstream = async_nats::jetstream::new(async_nats::connect(testkit::nats_url()).await?);
        let streams = bus::streams::DOMAINS
            .iter()
            .map(|domain| namespace.stream_name(domain))
            .chain([namespace.dead_letter_stream()]);
        for stream in streams {
            // A stream nobody created is fine.
            let _ = jetstream.delete_stream(&stream).await;
        }
        Ok(())
    }

    /// Gives every table of the run's database its statistics, as autovacuum would within a
    /// minute or two of the first writes. Without it, the first minute runs on plans made for
    /// empty tables: a service's long-lived connections cache generic plans of their prepared
    /// statements (sequential scans of what was empty at start-up) until the first ANALYZE
    /// invalidates them, and a fresh database would be measured, not one in service.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        sqlx::query("ANALYZE").execute(&self.admin).await.context("analyze the run's database")?;
        Ok(())
    }

    /// The tables read most by sequential scans in this run's database (rows read, scans): a
    /// missing index shows here first.
    pub async fn sequential_reads(&self) -> String {
        let rows: Result<Vec<(String, i64, i64)>, _> = sqlx::query_as(
            "SELECT schemaname || '.' || relname, coalesce(seq_tup_read, 0), coalesce(seq_scan, 0)
             FROM pg_stat_user_tables WHERE seq_tup_read > 10000 ORDER BY seq_tup_read DESC LIMIT 4",
        )
        .fetch_all(&self.admin)
        .await;
        match rows {
            Ok(rows) if rows.is_empty() => "none over 10,000 rows".to_string(),
            Ok(rows) => rows
                .into_iter()
                .map(|(table, read, scans)| {
                    format!("{table} {} rows in {} scans", crate::figures::thousands(read as u64), scans)
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(err) => format!("unreadable: {err}"),
        }
    }

    /// A count or other scalar from the admin pool.
    pub async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        sqlx::query_scalar(sql).fetch_one(&self.admin).await.with_context(|| format!("query {sql}"))
    }
}

/// A superuser pool on `database`, for the bench's own reads (counts, polls).
///
/// Its sessions never plan a sequential scan where an index serves: the bench polls tables
/// that grow from empty during the run, and a plan made when a table was tiny would make every
/// later poll read the whole table, taking CPU from the services being measured.
pub async fn admin_pool(database: &str, connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = testkit::admin_url().parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute("SET enable_seqscan = off; SET plan_cache_mode = force_custom_plan").await?;
                Ok(())
            })
        })
        .connect_with(options.database(database))
        .await?)
}

/// `n` HTTP/2 connections to a gRPC server; callers take them round-robin, as several client
/// replicas would.
pub async fn channels(url: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(tonic::transport::Endpoint::from_shared(url.to_string())?.connect().await?);
    }
    Ok(out)
}

/// A bearer token as gRPC metadata, parsed once and cloned per request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    pub fn new(tenant: Option<uuid::Uuid>, role: testkit::Role) -> anyhow::Result<Self> {
        Ok(Self(format!("Bearer {}", testkit::token(tenant, role)).parse()?))
    }

    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.0.clone());
        request
    }
}
