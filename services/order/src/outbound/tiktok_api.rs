//! The TikTok Shop Partner API (version 202309), signed as documented: order detail, cancel,
//! and ship. Credentials (access token, shop cipher) come from ingest's channel registry.

use std::time::Duration;

use proto::ingest::v1 as ing;
use proto::ingest::v1::channel_service_client::ChannelServiceClient;
use resilience::{BreakerError, CircuitBreaker, Classify, RetryPolicy, Retryability};
use serde::Deserialize;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::tiktok::{OrderDetail, sign};

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("TikTok Shop unreachable: {0}")]
    Transport(String),
    #[error("TikTok Shop answered HTTP {0}")]
    Http(u16),
    #[error("TikTok Shop refused: code {code}: {message}")]
    Refused { code: i64, message: String },
    #[error("TikTok Shop answered something unexpected: {0}")]
    Malformed(String),
    #[error("no credentials for shop {0}: {1}")]
    Credentials(String, String),
    #[error("circuit breaker open for TikTok Shop")]
    BreakerOpen,
}

impl Classify for Error {
    fn retryability(&self) -> Retryability {
        match self {
            Error::Transport(_) | Error::BreakerOpen => Retryability::Transient,
            Error::Http(status) => resilience::classify::http_status(*status),
            // 36009003 and friends are internal errors on TikTok's side; 429-like codes too.
            Error::Refused { code: 36009003 | 36009004 | 105005, .. } => Retryability::Transient,
            Error::Refused { .. } | Error::Malformed(_) | Error::Credentials(..) => Retryability::Permanent,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    code: i64,
    #[serde(default)]
    message: String,
    data: Option<T>,
}

#[derive(Deserialize)]
struct OrdersData {
    #[serde(default)]
    orders: Vec<OrderDetail>,
}

#[derive(Clone)]
struct Credentials {
    access_token: String,
    shop_cipher: String,
}

#[derive(Clone)]
pub struct TiktokApi {
    http: reqwest::Client,
    base_url: String,
    app_key: String,
    app_secret: String,
    channels: ChannelServiceClient<Channel>,
    keys: auth::JwtKeys,
    retry: RetryPolicy,
    pub breaker: CircuitBreaker,
}

impl TiktokApi {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: &str,
        app_key: &str,
        app_secret: &str,
        ingest: Channel,
        keys: auth::JwtKeys,
        retry: RetryPolicy,
        breaker: resilience::BreakerConfig,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client with the ring provider");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            app_key: app_key.to_string(),
            app_secret: app_secret.to_string(),
            channels: ChannelServiceClient::new(ingest),
            keys,
            retry,
            breaker: CircuitBreaker::new("tiktok-shop", breaker),
        }
    }

    async fn credentials(&self, tenant_id: Uuid, shop_id: &str) -> Result<Credentials, Error> {
        let token = self.keys.mint_service("order", tenant_id, None, Duration::from_secs(120));
        let request = ing::GetChannelCredentialsRequest {
            channel_id: String::new(),
            platform: ing::Platform::TiktokShop as i32,
            external_id: shop_id.to_string(),
        };
        let request = auth::grpc::with_bearer(tonic::Request::new(request), &token)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        let mut channels = self.channels.clone();
        match channels.get_channel_credentials(request).await {
            Ok(response) => {
                let credentials = response.into_inner();
                Ok(Credentials { access_token: credentials.access_token, shop_cipher: credentials.shop_cipher })
            }
            Err(status) if status.retryability() == Retryability::Transient => {
                Err(Error::Transport(status.message().to_string()))
            }
            Err(status) => Err(Error::Credentials(shop_id.to_string(), status.message().to_string())),
        }
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        credentials: &Credentials,
        extra_query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Option<T>, Error> {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let mut query: Vec<(&str, &str)> =
            vec![("app_key", &self.app_key), ("timestamp", &timestamp), ("shop_cipher", &credentials.shop_cipher)];
        query.extend_from_slice(extra_query);
        let signature = sign(&self.app_secret, path, &query, body.as_deref().unwrap_or_default());
        query.push(("sign", &signature));
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .query(&query)
            .header("x-tts-access-token", &credentials.access_token)
            .header("content-type", "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| Error::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Error::Http(status));
        }
        let envelope: Envelope<T> = response.json().await.map_err(|e| Error::Malformed(e.to_string()))?;
        if envelope.code != 0 {
            return Err(Error::Refused { code: envelope.code, message: envelope.message });
        }
        Ok(envelope.data)
    }

    async fn guarded<T, F, Fut>(&self, operation: &str, f: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        resilience::call_with_retry(&self.retry, &self.breaker, operation, f).await.map_err(|e| match e {
            BreakerError::Open { .. } => Error::BreakerOpen,
            BreakerError::Inner(inner) => inner,
        })
    }

    /// `GET /order/202309/orders?ids=…`
    pub async fn order_detail(&self, tenant_id: Uuid, shop_id: &str, order_id: &str) -> Result<OrderDetail, Error> {
        let credentials = self.credentials(tenant_id, shop_id).await?;
        let ids = [("ids", order_id)];
        let data: OrdersData = self
            .guarded("tiktok order detail", || {
                self.send::<OrdersData>(reqwest::Method::GET, "/order/202309/orders", &credentials, &ids, None)
            })
            .await?
            .ok_or_else(|| Error::Malformed("no data".into()))?;
        data.orders
            .into_iter()
            .find(|o| o.id == order_id)
            .ok_or_else(|| Error::Malformed(format!("order {order_id} not in the answer")))
    }

    /// `POST /return_refund/202309/cancellations`
    pub async fn cancel(&self, tenant_id: Uuid, shop_id: &str, order_id: &str, reason: &str) -> Result<(), Error> {
        let credentials = self.credentials(tenant_id, shop_id).await?;
        let body = serde_json::json!({ "order_id": order_id, "cancel_reason": reason }).to_string();
        self.guarded("tiktok cancel", || {
            self.send::<serde_json::Value>(
                reqwest::Method::POST,
                "/return_refund/202309/cancellations",
                &credentials,
                &[],
                Some(body.clone()),
            )
        })
        .await
        .map(|_| ())
    }

    /// `POST /fulfillment/202309/packages/{package_id}/ship` with the seller's tracking.
    pub async fn ship(
        &self,
        tenant_id: Uuid,
        shop_id: &str,
        package_id: &str,
        tracking_number: &str,
        provider_id: &str,
    ) -> Result<(), Error> {
        let credentials = self.credentials(tenant_id, shop_id).await?;
        let path = format!("/fulfillment/202309/packages/{package_id}/ship");
        let body = serde_json::json!({
            "handover_method": "DROP_OFF",
            "self_shipment": { "tracking_number": tracking_number, "shipping_provider_id": provider_id },
        })
        .to_string();
        self.guarded("tiktok ship", || {
            self.send::<serde_json::Value>(reqwest::Method::POST, &path, &credentials, &[], Some(body.clone()))
        })
        .await
        .map(|_| ())
    }
}
