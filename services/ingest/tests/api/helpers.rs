//! `spawn_app`: the ingest service in-process on its own database and bus namespace, plus
//! helpers that call it the way Meta and TikTok do (signed raw bodies).

use std::time::Duration;

use bus::Namespace;
use ingest::config::{DEV_META_APP_SECRET, DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET};
use ingest::domain::signature;
use proto::ingest::v1::channel_service_client::ChannelServiceClient;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub grpc: String,
    pub env: testkit::TestEnv,
    pub http: reqwest::Client,
    pub token: CancellationToken,
    pub _running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut ingest::Config)) -> TestApp {
    let env = testkit::TestEnv::new().await;
    let mut config = ingest::Config::for_tests(env.common("ingest"));
    adjust(&mut config);
    spawn_on(env, config).await
}

pub async fn spawn_on(env: testkit::TestEnv, config: ingest::Config) -> TestApp {
    let token = CancellationToken::new();
    let app = ingest::startup::build(config, token.clone()).await.expect("ingest starts");
    let base = format!("http://{}", app.http_addr);
    let grpc = format!("http://{}", app.grpc_addr);
    let running = tokio::spawn(app.run_until_stopped());
    TestApp { base, grpc, env, http: testkit::http_client(), token, _running: running }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

impl TestApp {
    pub fn namespace(&self) -> Namespace {
        Namespace::new(&self.env.namespace).expect("namespace")
    }

    pub async fn post_meta(&self, platform: &str, body: &[u8]) -> reqwest::Response {
        let signature = signature::sign_meta(DEV_META_APP_SECRET.as_bytes(), body);
        self.http
            .post(format!("{}/webhooks/{platform}", self.base))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("request")
    }

    pub async fn post_tiktok(&self, body: &[u8]) -> reqwest::Response {
        let signature = signature::sign_tiktok(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET.as_bytes(), body);
        self.http
            .post(format!("{}/webhooks/tiktok", self.base))
            .header("content-type", "application/json")
            .header("authorization", signature)
            .body(body.to_vec())
            .send()
            .await
            .expect("request")
    }

    /// The service's Prometheus exposition.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(format!("{}/metrics", self.base)).send().await.expect("metrics");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    }

    pub async fn channels_client(&self) -> ChannelServiceClient<tonic::transport::Channel> {
        ChannelServiceClient::connect(self.grpc.clone()).await.expect("grpc connect")
    }

    /// Registers a channel as the operator would; returns the tenant.
    pub async fn register_channel(&self, platform: proto::ingest::v1::Platform, external_id: &str) -> Uuid {
        let tenant = Uuid::new_v4();
        self.register_channel_for(tenant, platform, external_id).await;
        tenant
    }

    pub async fn register_channel_for(
        &self,
        tenant: Uuid,
        platform: proto::ingest::v1::Platform,
        external_id: &str,
    ) -> proto::ingest::v1::Channel {
        let mut client = self.channels_client().await;
        let request = authorized(
            proto::ingest::v1::RegisterChannelRequest {
                tenant_id: tenant.to_string(),
                platform: platform as i32,
                external_id: external_id.to_string(),
                display_name: "test".into(),
            },
            &testkit::token(None, testkit::Role::Operator),
        );
        client.register_channel(request).await.expect("register channel").into_inner()
    }

    /// Messages in one of this app's streams.
    pub async fn stream_count(&self, domain: &str) -> u64 {
        let client = async_nats::connect(testkit::nats_url()).await.expect("nats");
        let js = async_nats::jetstream::new(client);
        match js.get_stream(self.namespace().stream_name(domain)).await {
            Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Every envelope in a stream, in order.
    pub async fn stream_payloads(&self, domain: &str) -> Vec<(String, serde_json::Value)> {
        let client = async_nats::connect(testkit::nats_url()).await.expect("nats");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(self.namespace().stream_name(domain)).await.expect("stream");
        let mut out = Vec::new();
        let mut seq = 1;
        while let Ok(message) = stream.get_raw_message(seq).await {
            out.push((message.subject.to_string(), serde_json::from_slice(&message.payload).expect("json")));
            seq += 1;
        }
        out
    }

    /// The headers of every message in a stream, in order.
    pub async fn stream_headers(&self, domain: &str) -> Vec<std::collections::HashMap<String, String>> {
        let client = async_nats::connect(testkit::nats_url()).await.expect("nats");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream(self.namespace().stream_name(domain)).await.expect("stream");
        let mut out = Vec::new();
        let mut seq = 1;
        while let Ok(message) = stream.get_raw_message(seq).await {
            out.push(
                message
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.first().map(|v| v.to_string()).unwrap_or_default()))
                    .collect(),
            );
            seq += 1;
        }
        out
    }

    /// Waits until the outbox is empty and `domain`'s stream holds `n` messages.
    pub async fn wait_published(&self, domain: &str, n: u64) {
        testkit::eventually(&format!("{n} messages in {domain}"), Duration::from_secs(20), || async {
            self.stream_count(domain).await == n
        })
        .await;
    }

    pub async fn admin_scalar(&self, sql: &str) -> i64 {
        let pool = self.env.db.admin().await.expect("admin pool");
        let value: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("scalar");
        pool.close().await;
        value
    }
}

pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    auth::grpc::with_bearer(tonic::Request::new(message), token).expect("token header")
}

/// The value of the sample `name{labels}` holding every label in `labels`, if there is one.
pub fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{')?;
        (metric == name && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
    })
}
