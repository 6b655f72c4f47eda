//! TikTok Shop webhooks: `{ type, tts_notification_id, shop_id, timestamp, data }`.
//!
//! Order and shop ids have 18-19 digits and may arrive as bare JSON numbers above 2^53, so every
//! id is read as the literal text of its JSON token, never through a float. The notification is a
//! signal: the order service fetches the order detail from the API.

use events::ingest::{Platform, TiktokNotificationKind, TiktokShopNotification};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::normalized::json_literal;
use super::{ChannelRef, IngestEvent, Normalized, ParseError};

#[derive(Debug, Deserialize)]
struct Webhook {
    #[serde(rename = "type")]
    kind: i64,
    tts_notification_id: Box<RawValue>,
    shop_id: Box<RawValue>,
    timestamp: i64,
    data: Box<RawValue>,
}

/// The fields orderflow reads from `data`, whichever notification type it is.
#[derive(Debug, Deserialize, Default)]
struct Data {
    #[serde(default)]
    order_id: Option<Box<RawValue>>,
    #[serde(default)]
    order_status: Option<String>,
    #[serde(default)]
    cancel_status: Option<String>,
    #[serde(default)]
    return_status: Option<String>,
    #[serde(default)]
    update_time: Option<i64>,
    /// Cancellation notifications carry only a creation time.
    #[serde(default)]
    create_time: Option<i64>,
}

fn bad(field: &'static str, reason: impl std::fmt::Display) -> ParseError {
    ParseError::BadField { field, reason: reason.to_string() }
}

fn id_text(field: &'static str, raw: &RawValue) -> Result<String, ParseError> {
    let text = json_literal(raw).map_err(|e| bad(field, e))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(field, format!("{text:?} is not a numeric id")));
    }
    Ok(text)
}

/// Parses and normalises a TikTok Shop webhook body.
pub fn normalize(body: &[u8]) -> Result<Normalized, ParseError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(|e| ParseError::from_serde("tiktok_shop", e))?;
    let notification_id = id_text("tts_notification_id", &webhook.tts_notification_id)?;
    let shop_id = id_text("shop_id", &webhook.shop_id)?;
    if !webhook.data.get().trim_start().starts_with('{') {
        return Err(ParseError::WrongShape { platform: "tiktok_shop", reason: "data is not an object".into() });
    }
    let data: Data = serde_json::from_str(webhook.data.get()).map_err(|e| bad("data", e))?;
    let order_id = data.order_id.as_deref().map(|raw| id_text("data.order_id", raw)).transpose()?;
    let sent_at = time::OffsetDateTime::from_unix_timestamp(webhook.timestamp).map_err(|e| bad("timestamp", e))?;
    let partition_key = match &order_id {
        Some(order_id) => format!("tt:{shop_id}:{order_id}"),
        None => format!("tt:{shop_id}"),
    };
    Ok(Normalized {
        dedupe_key: format!("tt:{notification_id}"),
        channel: ChannelRef { platform: Platform::TiktokShop, external_id: shop_id.clone() },
        partition_key,
        event: IngestEvent::Tiktok(TiktokShopNotification {
            shop_id,
            notification_id,
            notification_type: webhook.kind,
            kind: TiktokNotificationKind::from_type(webhook.kind),
            order_id,
            status: data.order_status.or(data.cancel_status).or(data.return_status),
            update_time: data.update_time.or(data.create_time),
            sent_at,
            raw_data: webhook.data.get().to_string(),
        }),
    })
}
