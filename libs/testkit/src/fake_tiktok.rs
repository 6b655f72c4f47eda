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
    /// Order details by order id, as the Get Order Detail API returns them.
    orders: Mutex<HashMap<String, serde_json::Value>>,
    /// The access token the shop API accepts.
    access_token: Mutex<String>,
    /// Calls received by the write APIs: (path, body).
    writes: Mutex<Vec<(String, serde_json::Value)>>,
    detail_calls: AtomicUsize,
}

pub struct FakeTiktok {
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeTiktok {
    pub async fn start(app_key: &str, app_secret: &str) -> Self {
        let shared = Arc::new(Shared { app_key: app_key.into(), app_secret: app_secret.into(), ..Default::default() });
        let router = Router::new()
            .route("/api/v2/token/refresh", get(refresh))
            .route("/order/202309/orders", get(order_detail))
            .route("/return_refund/202309/cancellations", axum::routing::post(write_call))
            .route("/fulfillment/202309/packages/{package_id}/ship", axum::routing::post(write_call))
            .with_state(shared.clone());
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

    /// Serves `order` (a Get Order Detail order object) from now on; replaces an earlier one.
    pub fn put_order(&self, order: serde_json::Value) {
        let id = order.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        self.shared.orders.lock().expect("lock").insert(id, order);
    }

    /// The shop API accepts only this access token.
    pub fn set_access_token(&self, token: &str) {
        *self.shared.access_token.lock().expect("lock") = token.to_string();
    }

    pub fn detail_calls(&self) -> usize {
        self.shared.detail_calls.load(Ordering::SeqCst)
    }

    /// Calls to the write APIs so far: (path, JSON body).
    pub fn writes(&self) -> Vec<(String, serde_json::Value)> {
        self.shared.writes.lock().expect("lock").clone()
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

/// The documented signature, implemented here independently of the client: path, sorted query
/// parameters (without `sign` and `access_token`), body, wrapped in the secret; HMAC-SHA256.
fn expected_sign(secret: &str, path: &str, query: &HashMap<String, String>, body: &str) -> String {
    use hmac::Mac;
    let mut keys: Vec<&String> = query.keys().filter(|k| *k != "sign" && *k != "access_token").collect();
    keys.sort();
    let mut message = format!("{secret}{path}");
    for key in keys {
        message.push_str(key);
        message.push_str(&query[key]);
    }
    message.push_str(body);
    message.push_str(secret);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks the app key, the signature and the access token as TikTok does.
// The refusal is the HTTP answer itself, returned as is by the handler; boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn authenticate(
    shared: &Shared,
    path: &str,
    headers: &axum::http::HeaderMap,
    query: &HashMap<String, String>,
    body: &str,
) -> Result<(), Response> {
    if query.get("app_key").map(String::as_str) != Some(shared.app_key.as_str()) {
        return Err(envelope(106002, "invalid app_key", serde_json::Value::Null));
    }
    let sign = query.get("sign").cloned().unwrap_or_default();
    if sign != expected_sign(&shared.app_secret, path, query, body) {
        return Err(envelope(106001, "Invalid credentials: wrong signature", serde_json::Value::Null));
    }
    let token = headers.get("x-tts-access-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let expected = shared.access_token.lock().expect("lock").clone();
    if !expected.is_empty() && token != expected {
        return Err(envelope(105002, "Expired credentials", serde_json::Value::Null));
    }
    Ok(())
}

/// `GET /order/202309/orders?ids=…`
async fn order_detail(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.detail_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(failure) = scripted_failure(&shared) {
        return failure;
    }
    if let Err(refusal) = authenticate(&shared, "/order/202309/orders", &headers, &query, "") {
        return refusal;
    }
    let ids: Vec<String> = query.get("ids").map(|ids| ids.split(',').map(str::to_string).collect()).unwrap_or_default();
    let orders: Vec<serde_json::Value> = {
        let stored = shared.orders.lock().expect("lock");
        ids.iter().filter_map(|id| stored.get(id).cloned()).collect()
    };
    envelope(0, "Success", serde_json::json!({ "orders": orders }))
}

/// The write APIs: cancellations and shipping.
async fn write_call(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Some(failure) = scripted_failure(&shared) {
        return failure;
    }
    if let Err(refusal) = authenticate(&shared, uri.path(), &headers, &query, &body) {
        return refusal;
    }
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    shared.writes.lock().expect("lock").push((uri.path().to_string(), json));
    envelope(0, "Success", serde_json::json!({}))
}
