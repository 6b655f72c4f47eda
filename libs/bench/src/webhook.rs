//! Signed WhatsApp webhooks, shaped as Meta sends them, and the HTTP client that posts them.
//!
//! The client shares two cores with the services, so every microsecond it spends per request is
//! taken from them. Two clients are available: reqwest (what the tests use), and a minimal
//! HTTP/1.1 keep-alive client over a pool of TCP connections (one request in flight per
//! connection, as Meta's delivery does) that costs a fraction of reqwest's CPU per request.
//! `--client reqwest` switches; the raw client is the default.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ingest::config::DEV_META_APP_SECRET;
use ingest::domain::signature;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::drive::Outcome;

/// One WhatsApp text message from one customer to one business number, as Meta posts it.
pub fn whatsapp_text(phone_number_id: &str, wa_id: &str, name: &str, message_id: &str, text: &str) -> Vec<u8> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    format!(
        concat!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":"#,
            r#"{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","#,
            r#""phone_number_id":"{pnid}"}},"contacts":[{{"profile":{{"name":"{name}"}},"wa_id":"{wa}"}}],"#,
            r#""messages":[{{"from":"{wa}","id":"{id}","timestamp":"{ts}","text":{{"body":"{text}"}},"#,
            r#""type":"text"}}]}},"field":"messages"}}]}}]}}"#
        ),
        pnid = phone_number_id,
        name = name,
        wa = wa_id,
        id = message_id,
        ts = timestamp,
        text = text,
    )
    .into_bytes()
}

/// Which HTTP client posts the webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Raw,
    Reqwest,
}

impl ClientKind {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "raw" => Some(ClientKind::Raw),
            "reqwest" => Some(ClientKind::Reqwest),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ClientKind::Raw => "raw HTTP/1.1 keep-alive client (tokio TcpStream)",
            ClientKind::Reqwest => "reqwest",
        }
    }
}

/// Posts signed webhooks to ingest and tells success (200 with the event stored) from anything else.
#[derive(Clone)]
pub struct WebhookPoster {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    kind: ClientKind,
    idle: std::sync::Mutex<Vec<Connection>>,
    reqwest: reqwest::Client,
    connections_opened: AtomicU64,
}

impl WebhookPoster {
    pub fn new(addr: SocketAddr, kind: ClientKind) -> Self {
        Self {
            inner: Arc::new(Inner {
                addr,
                kind,
                idle: std::sync::Mutex::new(Vec::new()),
                reqwest: testkit::http_client(),
                connections_opened: AtomicU64::new(0),
            }),
        }
    }

    pub fn connections_opened(&self) -> u64 {
        self.inner.connections_opened.load(Ordering::Relaxed)
    }

    /// Signs `body` with the app secret (as Meta does) and posts it to `/webhooks/whatsapp`.
    pub async fn post_whatsapp(&self, body: Vec<u8>) -> Outcome {
        let signature = signature::sign_meta(DEV_META_APP_SECRET.as_bytes(), &body);
        let answer = match self.inner.kind {
            ClientKind::Raw => self.post_raw(&signature, &body).await,
            ClientKind::Reqwest => self.post_reqwest(signature, body).await,
        };
        match answer {
            // Ingest answers {"duplicates":0,"parked":0,"published":1} once the event is stored.
            Ok((200, body)) if contains(&body, br#""published":1"#) => Outcome::Ok,
            Ok((200, _)) => Outcome::Error("200 without a published event".into()),
            Ok((status, _)) => Outcome::Error(format!("HTTP {status}")),
            Err(err) => Outcome::Error(err),
        }
    }

    async fn post_reqwest(&self, signature: String, body: Vec<u8>) -> Result<(u16, Bytes), String> {
        let response = self
            .inner
            .reqwest
            .post(format!("http://{}/webhooks/whatsapp", self.inner.addr))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| format!("read body: {e}"))?;
        Ok((status, body))
    }

    async fn post_raw(&self, signature: &str, body: &[u8]) -> Result<(u16, Bytes), String> {
        let pooled = self.inner.idle.lock().map_err(|_| "client pool poisoned".to_string())?.pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => {
                let stream = TcpStream::connect(self.inner.addr).await.map_err(|e| format!("connect: {e}"))?;
                stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
                self.inner.connections_opened.fetch_add(1, Ordering::Relaxed);
                Connection { stream, buffer: Vec::with_capacity(1024) }
            }
        };
        let mut request = Vec::with_capacity(body.len() + 256);
        request.extend_from_slice(
            format!(
                "POST /webhooks/whatsapp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
                 x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n\r\n",
                self.inner.addr,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body);
        connection.stream.write_all(&request).await.map_err(|e| format!("write: {e}"))?;
        let (status, body, keep_alive) = connection.read_response().await?;
        if keep_alive && let Ok(mut idle) = self.inner.idle.lock() {
            idle.push(connection);
        }
        Ok((status, body))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// Reads one response with a `content-length` body; returns status, body and whether the
    /// connection may be reused.
    async fn read_response(&mut self) -> Result<(u16, Bytes, bool), String> {
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            if let Some(position) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break position + 4;
            }
            let read = self.stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if read == 0 {
                return Err("connection closed before the response".into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        };
        let head = std::str::from_utf8(&self.buffer[..header_end]).map_err(|_| "response head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or("no status line")?;
        let mut length = None;
        let mut keep_alive = true;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked responses are not supported by the raw client".into());
            }
        }
        let length = length.ok_or("response without content-length")?;
        while self.buffer.len() < header_end + length {
            let read = self.stream.read(&mut chunk).await.map_err(|e| format!("read body: {e}"))?;
            if read == 0 {
                return Err("connection closed in the body".into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        let body = Bytes::copy_from_slice(&self.buffer[header_end..header_end + length]);
        // One request in flight per connection: nothing may follow the body.
        Ok((status, body, keep_alive && self.buffer.len() == header_end + length))
    }
}

/// Registers a WhatsApp business number for `tenant` through ingest's channel registry, as the
/// operator does.
pub async fn register_whatsapp(ingest_grpc: &str, tenant: uuid::Uuid, phone_number_id: &str) -> anyhow::Result<()> {
    use proto::ingest::v1 as pb;
    let mut client = pb::channel_service_client::ChannelServiceClient::connect(ingest_grpc.to_string()).await?;
    let operator = crate::stack::Bearer::new(None, testkit::Role::Operator)?;
    client
        .register_channel(operator.request(pb::RegisterChannelRequest {
            tenant_id: tenant.to_string(),
            platform: pb::Platform::Whatsapp as i32,
            external_id: phone_number_id.to_string(),
            display_name: "bench shop".into(),
        }))
        .await?;
    Ok(())
}
