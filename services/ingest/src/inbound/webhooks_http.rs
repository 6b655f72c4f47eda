//! The webhook endpoints Meta and TikTok call.
//!
//! Order of work on a POST: size limit, signature over the raw bytes, parse, normalise, durable
//! commit, then 200. No call to another service sits in between.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::ingest::Platform;

use crate::accept::{self, Acceptor};
use crate::domain::signature::{self, AppSecrets, SignatureError, SignedWith};
use crate::domain::{Normalized, ParseError, instagram, tiktok, whatsapp};
use crate::metrics::IngestMetrics;
use crate::outbound::webhooks::{self, Submission};

#[derive(Clone)]
pub struct WebhookState {
    pub acceptor: Acceptor,
    pub metrics: IngestMetrics,
    pub meta_secrets: AppSecrets,
    pub meta_verify_token: String,
    pub tiktok_app_key: String,
    pub tiktok_secrets: AppSecrets,
}

pub fn router(state: WebhookState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/webhooks/whatsapp", get(verify_subscription).post(whatsapp_post))
        .route("/webhooks/instagram", get(verify_subscription).post(instagram_post))
        .route("/webhooks/tiktok", axum::routing::post(tiktok_post))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Every way a webhook request can fail, mapped to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("body too large")]
    TooLarge,
    #[error("body could not be read")]
    UnreadableBody,
    #[error("verify token does not match")]
    VerifyTokenMismatch,
    #[error("not a subscription request")]
    NotSubscribe,
    #[error("{0}")]
    Accept(#[from] accept::Error),
}

impl WebhookError {
    fn status(&self) -> StatusCode {
        match self {
            WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Parse(_) | WebhookError::UnreadableBody | WebhookError::NotSubscribe => {
                StatusCode::BAD_REQUEST
            }
            WebhookError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::VerifyTokenMismatch => StatusCode::FORBIDDEN,
            WebhookError::Accept(accept::Error::ShuttingDown) => StatusCode::SERVICE_UNAVAILABLE,
            WebhookError::Accept(accept::Error::Store(err)) => match err.as_ref() {
                webhooks::Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                webhooks::Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn metric_outcome(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "error",
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A 5xx says only that it failed; the reason is in our logs, not in the platform's.
        let message = if status.is_server_error() { "temporarily unavailable".to_string() } else { self.to_string() };
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    }
}

fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, WebhookError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => WebhookError::TooLarge,
        _ => WebhookError::UnreadableBody,
    })
}

/// Meta's GET handshake: echo `hub.challenge` only for our verify token.
async fn verify_subscription(
    State(state): State<WebhookState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<String, WebhookError> {
    if params.get("hub.mode").map(String::as_str) != Some("subscribe") {
        return Err(WebhookError::NotSubscribe);
    }
    let token = params.get("hub.verify_token").map(String::as_str).unwrap_or_default();
    if token.as_bytes() != state.meta_verify_token.as_bytes() {
        return Err(WebhookError::VerifyTokenMismatch);
    }
    Ok(params.get("hub.challenge").cloned().unwrap_or_default())
}

async fn whatsapp_post(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let platform = Platform::Whatsapp;
    let result = async {
        let body = body_of(body)?;
        verify_meta(&state, platform, &headers, &body)?;
        let (events, skipped) = whatsapp::normalize(&body)?;
        if !skipped.other_fields.is_empty() {
            tracing::info!(fields = ?skipped.other_fields, "archived WhatsApp changes of fields ingest does not publish");
        }
        accept(&state, platform, body, events).await
    }
    .await;
    respond(&state, platform, result)
}

async fn instagram_post(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let platform = Platform::Instagram;
    let result = async {
        let body = body_of(body)?;
        verify_meta(&state, platform, &headers, &body)?;
        let events = instagram::normalize(&body)?;
        accept(&state, platform, body, events).await
    }
    .await;
    respond(&state, platform, result)
}

async fn tiktok_post(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebhookError> {
    let platform = Platform::TiktokShop;
    let result = async {
        let body = body_of(body)?;
        let authorization = header(&headers, "authorization");
        let signed_with = state
            .tiktok_secrets
            .verify(|secret| signature::verify_tiktok(&state.tiktok_app_key, secret, authorization, &body))?;
        count_signed_with(&state, platform, signed_with);
        let event = tiktok::normalize(&body)?;
        accept(&state, platform, body, vec![event]).await
    }
    .await;
    respond(&state, platform, result)
}

fn verify_meta(state: &WebhookState, platform: Platform, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    let signature = header(headers, "x-hub-signature-256");
    let signed_with = state.meta_secrets.verify(|secret| signature::verify_meta(secret, signature, body))?;
    count_signed_with(state, platform, signed_with);
    Ok(())
}

fn count_signed_with(state: &WebhookState, platform: Platform, signed_with: SignedWith) {
    if signed_with == SignedWith::Previous {
        state.metrics.count_previous_secret(platform);
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn accept(
    state: &WebhookState,
    platform: Platform,
    body: Bytes,
    events: Vec<Normalized>,
) -> Result<webhooks::Outcome, WebhookError> {
    // The request's span: its trace context travels with every event the webhook produces.
    let span = tracing::info_span!("webhook", platform = platform.as_str(), events = events.len());
    let trace = span.in_scope(|| telemetry::propagation::current_headers().into_iter().collect());
    Ok(state.acceptor.accept(Submission { platform, body, events, trace }).await?)
}

fn respond(
    state: &WebhookState,
    platform: Platform,
    result: Result<webhooks::Outcome, WebhookError>,
) -> Result<Response, WebhookError> {
    match result {
        Ok(outcome) => {
            state.metrics.count_webhook(platform, "accepted");
            tracing::info!(
                platform = platform.as_str(),
                published = outcome.published,
                duplicates = outcome.duplicates,
                parked = outcome.parked,
                "webhook accepted"
            );
            let body = serde_json::json!({
                "published": outcome.published,
                "duplicates": outcome.duplicates,
                "parked": outcome.parked,
            });
            Ok((StatusCode::OK, axum::Json(body)).into_response())
        }
        Err(err) => {
            state.metrics.count_webhook(platform, err.metric_outcome());
            match err.status() {
                status if status.is_server_error() => {
                    tracing::error!(platform = platform.as_str(), error = %err, "webhook not stored")
                }
                // Parse errors can quote payload values (message text, phone numbers): not logged.
                _ if matches!(err, WebhookError::Parse(_)) => {
                    tracing::warn!(platform = platform.as_str(), "webhook refused: not the platform's shape")
                }
                _ => tracing::warn!(platform = platform.as_str(), error = %err, "webhook refused"),
            }
            Err(err)
        }
    }
}
