//! A local stand-in for the TikTok Shop APIs, speaking their real formats, with scripted
//! failures (HTTP 429/5xx, refusals) so retries and breakers can be tested.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Default)]
struct Shared {
    app_key: String,
    app_secret: String,
    refresh_calls: AtomicUsize,
    /// HTTP statuses to answer before answering normally, one per call.
    failures: Mutex<VecDeque<u16>>,
    /// Refresh tokens TikTok no longer accepts.
    revoked: Mutex<Vec<String>>,
}

pub struct FakeTiktok {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeTiktok {
    pub async fn start(app_key: &str, app_secret: &str) -> Self {
        let shared = Arc::new(Shared { app_key: app_key.into(), app_secret: app_secret.into(), ..Default::default() });
        let router = Router::new().route("/api/v2/token/refresh", get(refresh)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake tiktok");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base_url, shared, server }
    }

    /// The next calls answer these HTTP statuses (e.g. 429, 503) before succeeding.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.failures.lock().expect("lock").extend(statuses);
    }

    pub fn revoke_refresh_token(&self, token: &str) {
        self.shared.revoked.lock().expect("lock").push(token.to_string());
    }

    pub fn refresh_calls(&self) -> usize {
        self.shared.refresh_calls.load(Ordering::SeqCst)
    }
}

impl Drop for FakeTiktok {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn scripted_failure(shared: &Shared) -> Option<Response> {
    let status = shared.failures.lock().expect("lock").pop_front()?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some((status, "scripted failure").into_response())
}

fn envelope(code: i64, message: &str, data: serde_json::Value) -> Response {
    axum::Json(serde_json::json!({
        "code": code,
        "message": message,
        "data": data,
        "request_id": format!("2026112203{:012}", fastrand_like()),
    }))
    .into_response()
}

fn fastrand_like() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() as u64).unwrap_or(0)
}

/// `GET /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token`
async fn refresh(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let call = shared.refresh_calls.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(failure) = scripted_failure(&shared) {
        return failure;
    }
    let get = |key: &str| query.get(key).map(String::as_str).unwrap_or_default();
    if get("app_key") != shared.app_key || get("app_secret") != shared.app_secret {
        return envelope(105001, "invalid app_key or app_secret", serde_json::Value::Null);
    }
    if get("grant_type") != "refresh_token" {
        return envelope(36004004, "invalid grant_type", serde_json::Value::Null);
    }
    let refresh_token = get("refresh_token");
    if refresh_token.is_empty() || shared.revoked.lock().expect("lock").iter().any(|t| t == refresh_token) {
        return envelope(105002, "refresh_token is expired or revoked", serde_json::Value::Null);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    envelope(
        0,
        "success",
        serde_json::json!({
            "access_token": format!("ROW_access_{call}"),
            "access_token_expire_in": now + 7 * 24 * 3600,
            "refresh_token": format!("ROW_refresh_{call}"),
            "refresh_token_expire_in": now + 365 * 24 * 3600,
            "open_id": "7010736057180325637",
            "seller_name": "Demo Shop",
            "seller_base_region": "GB",
            "user_type": 0,
            "granted_scopes": ["seller.order.info", "seller.fulfillment.basic", "seller.product.basic"]
        }),
    )
}
