//! TikTok Shop's token endpoint: exchanges a refresh token for a new access token.
//!
//! `GET {base}/api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token`
//! answers `{ code, message, data: { access_token, access_token_expire_in, refresh_token,
//! refresh_token_expire_in } }`; the `*_expire_in` fields are epoch seconds. A `code` other than 0
//! is a refusal (e.g. a revoked refresh token) and is not retried.

use resilience::{BreakerError, CircuitBreaker, Classify, RetryPolicy, Retryability};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshedTokens {
    pub access_token: String,
    pub access_token_expires_at: i64,
    pub refresh_token: String,
    pub refresh_token_expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TikTok auth API unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("TikTok auth API answered HTTP {0}")]
    Status(u16),
    #[error("TikTok refused the refresh: code {code}: {message}")]
    Refused { code: i64, message: String },
    #[error("TikTok auth API answered something unexpected: {0}")]
    Malformed(String),
}

impl Classify for Error {
    fn retryability(&self) -> Retryability {
        match self {
            Error::Transport(err) => err.retryability(),
            Error::Status(status) => resilience::classify::http_status(*status),
            Error::Refused { .. } | Error::Malformed(_) => Retryability::Permanent,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    access_token: String,
    access_token_expire_in: i64,
    refresh_token: String,
    refresh_token_expire_in: i64,
}

#[derive(Clone)]
pub struct TiktokAuthClient {
    http: reqwest::Client,
    base_url: String,
    app_key: String,
    app_secret: String,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
}

impl TiktokAuthClient {
    pub fn new(base_url: &str, app_key: &str, app_secret: &str, retry: RetryPolicy, breaker: CircuitBreaker) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("an HTTP client with the ring provider installed");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            app_key: app_key.to_string(),
            app_secret: app_secret.to_string(),
            retry,
            breaker,
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<RefreshedTokens, BreakerError<Error>> {
        resilience::call_with_retry(&self.retry, &self.breaker, "tiktok token refresh", || {
            self.refresh_once(refresh_token)
        })
        .await
    }

    async fn refresh_once(&self, refresh_token: &str) -> Result<RefreshedTokens, Error> {
        let response = self
            .http
            .get(format!("{}/api/v2/token/refresh", self.base_url))
            .query(&[
                ("app_key", self.app_key.as_str()),
                ("app_secret", self.app_secret.as_str()),
                ("refresh_token", refresh_token),
                ("grant_type", "refresh_token"),
            ])
            .send()
            .await?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Error::Status(status));
        }
        let body: Envelope = response.json().await.map_err(|e| Error::Malformed(e.to_string()))?;
        if body.code != 0 {
            return Err(Error::Refused { code: body.code, message: body.message });
        }
        let data = body.data.ok_or_else(|| Error::Malformed("success without data".into()))?;
        Ok(RefreshedTokens {
            access_token: data.access_token,
            access_token_expires_at: data.access_token_expire_in,
            refresh_token: data.refresh_token,
            refresh_token_expires_at: data.refresh_token_expire_in,
        })
    }
}
