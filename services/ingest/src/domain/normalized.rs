//! The result of normalising a webhook: events not yet routed to a tenant.

use events::ingest::{EchoReceived, MessageReceived, MessageStatusUpdated, Platform, TiktokShopNotification};
use uuid::Uuid;

/// The channel an event arrived on, as the platform names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    pub platform: Platform,
    /// WhatsApp `phone_number_id`, Instagram account id, or TikTok `shop_id`.
    pub external_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    Message(MessageReceived),
    Status(MessageStatusUpdated),
    Echo(EchoReceived),
    Tiktok(TiktokShopNotification),
}

impl IngestEvent {
    /// For metrics: what kind of event this is.
    pub fn kind(&self) -> &'static str {
        match self {
            IngestEvent::Message(_) => "message",
            IngestEvent::Status(_) => "status",
            IngestEvent::Echo(_) => "echo",
            IngestEvent::Tiktok(_) => "tiktok_shop",
        }
    }
}

/// One canonical event from a webhook, with the key that makes a redelivery recognisable.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// e.g. `wa:msg:wamid.X`, `wa:status:wamid.X:read`, `ig:msg:mid`, `tt:<notification id>`.
    pub dedupe_key: String,
    pub channel: ChannelRef,
    /// The aggregate the event is about, for ordering on the bus (the conversation or order).
    pub partition_key: String,
    pub event: IngestEvent,
}

/// Ids derived from the de-duplication key: a redelivered webhook yields the same event id, so
/// JetStream's `Nats-Msg-Id` and every consumer's inbox recognise it too.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_7769_6e67_6573_7431);

impl Normalized {
    pub fn event_id(&self) -> Uuid {
        Uuid::new_v5(&EVENT_ID_NAMESPACE, self.dedupe_key.as_bytes())
    }
}

/// Why a payload is not the platform's shape (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("not a {platform} webhook: {reason}")]
    WrongShape { platform: &'static str, reason: String },
    #[error("bad {field}: {reason}")]
    BadField { field: &'static str, reason: String },
}

impl ParseError {
    /// Syntax errors are "not JSON"; valid JSON of the wrong shape names what is missing.
    pub fn from_serde(platform: &'static str, err: serde_json::Error) -> Self {
        if err.is_data() {
            ParseError::WrongShape { platform, reason: err.to_string() }
        } else {
            ParseError::NotJson(err.to_string())
        }
    }
}

/// A WhatsApp `wa_id` (digits with country code) as E.164, if it looks like a phone number.
pub fn phone_e164(digits: &str) -> Option<String> {
    let digits = digits.trim_start_matches('+');
    let valid =
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    valid.then(|| format!("+{digits}"))
}

/// The literal text of a JSON number or string, never through a float: `30.99` stays "30.99"
/// and `7327112393057371910` keeps every digit.
pub(crate) fn json_literal(raw: &serde_json::value::RawValue) -> Result<String, String> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).map_err(|e| e.to_string());
    }
    let is_number =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E' | b'+'));
    if is_number { Ok(text.to_string()) } else { Err(format!("expected a number or string, got {text}")) }
}

/// Epoch seconds (WhatsApp sends them as a string) as a timestamp.
pub(crate) fn from_epoch_seconds(field: &'static str, value: &str) -> Result<time::OffsetDateTime, ParseError> {
    let seconds: i64 = value
        .trim()
        .parse()
        .map_err(|_| ParseError::BadField { field, reason: format!("{value:?} is not epoch seconds") })?;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|e| ParseError::BadField { field, reason: e.to_string() })
}

/// Epoch milliseconds (Instagram) as a timestamp.
pub(crate) fn from_epoch_millis(field: &'static str, millis: i64) -> Result<time::OffsetDateTime, ParseError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|e| ParseError::BadField { field, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_become_e164_or_nothing() {
        assert_eq!(phone_e164("16505551234").as_deref(), Some("+16505551234"));
        assert_eq!(phone_e164("+4915112345678").as_deref(), Some("+4915112345678"));
        for bad in ["", "123", "0123456789", "1650555123a", "1234567890123456"] {
            assert_eq!(phone_e164(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_ids_are_stable_per_key() {
        let normalized = |key: &str| Normalized {
            dedupe_key: key.into(),
            channel: ChannelRef { platform: Platform::Whatsapp, external_id: "1".into() },
            partition_key: "p".into(),
            event: IngestEvent::Echo(EchoReceived {
                platform: Platform::Instagram,
                channel_id: "1".into(),
                message_id: "m".into(),
                recipient_id: "r".into(),
                sent_at: time::OffsetDateTime::UNIX_EPOCH,
                text: None,
            }),
        };
        assert_eq!(normalized("a").event_id(), normalized("a").event_id());
        assert_ne!(normalized("a").event_id(), normalized("b").event_id());
    }
}
