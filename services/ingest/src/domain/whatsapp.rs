//! WhatsApp Cloud API webhooks: the payload as Meta sends it, and its normalisation.
//!
//! `object = "whatsapp_business_account"`, `entry[].changes[]` with `field = "messages"` and a
//! `value` holding `metadata.phone_number_id` (the channel), `contacts[]`, `messages[]` and
//! `statuses[]`. One POST may carry several entries, changes and messages; each becomes an event.
//! Unknown fields are ignored; unknown message types are published as `unsupported`.

use events::ingest::{
    CatalogItem, Customer, DeliveryStatus, MessageContent, MessageReceived, MessageStatusUpdated, Platform, StatusError,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::normalized::{from_epoch_seconds, json_literal};
use super::{ChannelRef, IngestEvent, Normalized, ParseError, phone_e164};

#[derive(Debug, Deserialize)]
pub struct Webhook {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    pub field: String,
    pub value: Box<RawValue>,
}

#[derive(Debug, Deserialize)]
struct Value {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    /// Kept raw: each message is parsed from its own text so prices never pass through a float.
    #[serde(default)]
    messages: Vec<Box<RawValue>>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Debug, Deserialize)]
struct Contact {
    /// Absent for users known only by a business-scoped id (WhatsApp usernames).
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    reaction: Option<Reaction>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    referral: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Text {
    body: String,
}

#[derive(Debug, Deserialize)]
struct Order {
    #[serde(default)]
    catalog_id: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    product_items: Vec<ProductItem>,
}

#[derive(Debug, Deserialize)]
struct ProductItem {
    product_retailer_id: String,
    quantity: Box<RawValue>,
    item_price: Box<RawValue>,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct Interactive {
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    id: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Button {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Media {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    caption: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reaction {
    message_id: String,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Context {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    status: String,
    timestamp: String,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    errors: Vec<StatusErrorBody>,
}

#[derive(Debug, Deserialize)]
struct StatusErrorBody {
    code: i64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

fn bad(field: &'static str, reason: impl std::fmt::Display) -> ParseError {
    ParseError::BadField { field, reason: reason.to_string() }
}

/// What else a webhook held besides events: changes of other fields (counted, archived).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub other_fields: Vec<String>,
}

/// Parses and normalises a WhatsApp webhook body.
pub fn normalize(body: &[u8]) -> Result<(Vec<Normalized>, Skipped), ParseError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(|e| ParseError::from_serde("whatsapp", e))?;
    if webhook.object != "whatsapp_business_account" {
        return Err(ParseError::WrongShape { platform: "whatsapp", reason: format!("object is {:?}", webhook.object) });
    }
    let mut events = Vec::new();
    let mut skipped = Skipped::default();
    for entry in webhook.entry {
        for change in entry.changes {
            if change.field != "messages" {
                skipped.other_fields.push(change.field);
                continue;
            }
            let value: Value = serde_json::from_str(change.value.get()).map_err(|e| bad("value", e))?;
            normalize_value(value, &mut events)?;
        }
    }
    Ok((events, skipped))
}

fn normalize_value(value: Value, out: &mut Vec<Normalized>) -> Result<(), ParseError> {
    let channel = ChannelRef { platform: Platform::Whatsapp, external_id: value.metadata.phone_number_id.clone() };
    for raw in value.messages {
        let message: Message = serde_json::from_str(raw.get()).map_err(|e| bad("messages[]", e))?;
        let customer_id = message
            .from
            .clone()
            .or_else(|| message.from_user_id.clone())
            .ok_or_else(|| bad("messages[].from", "neither from nor from_user_id is present"))?;
        let contact = value.contacts.iter().find(|c| {
            c.wa_id.as_deref() == Some(customer_id.as_str()) || c.user_id.as_deref() == Some(customer_id.as_str())
        });
        let customer = Customer {
            platform_id: customer_id.clone(),
            name: contact.and_then(|c| c.profile.as_ref()).and_then(|p| p.name.clone()),
            // Only a phone number (`from`, `wa_id`) is a phone number; a business-scoped id is not.
            phone_e164: message.from.as_deref().and_then(phone_e164),
        };
        let content = content_of(&message, &raw)?;
        out.push(Normalized {
            dedupe_key: format!("wa:msg:{}", message.id),
            channel: channel.clone(),
            partition_key: format!("wa:{}:{customer_id}", channel.external_id),
            event: IngestEvent::Message(MessageReceived {
                platform: Platform::Whatsapp,
                channel_id: channel.external_id.clone(),
                message_id: message.id.clone(),
                customer,
                sent_at: from_epoch_seconds("messages[].timestamp", &message.timestamp)?,
                content,
                reply_to: message.context.and_then(|c| c.id),
                referral: message.referral,
            }),
        });
    }
    for status in value.statuses {
        let kind = match status.status.as_str() {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Other,
        };
        out.push(Normalized {
            dedupe_key: format!("wa:status:{}:{}", status.id, status.status),
            channel: channel.clone(),
            partition_key: format!("wa:out:{}", status.id),
            event: IngestEvent::Status(MessageStatusUpdated {
                platform: Platform::Whatsapp,
                channel_id: channel.external_id.clone(),
                message_id: status.id,
                status: kind,
                raw_status: status.status,
                recipient_id: status.recipient_id,
                at: from_epoch_seconds("statuses[].timestamp", &status.timestamp)?,
                errors: status
                    .errors
                    .into_iter()
                    .map(|e| StatusError {
                        code: e.code,
                        title: e.title,
                        message: e.message,
                        details: e.error_data.and_then(|d| d.details),
                    })
                    .collect(),
            }),
        });
    }
    Ok(())
}

fn content_of(message: &Message, raw: &RawValue) -> Result<MessageContent, ParseError> {
    // A plain JSON value of the message, for the kinds published as they are; prices never come
    // from here.
    let raw: serde_json::Value = serde_json::from_str(raw.get()).map_err(|e| bad("messages[]", e))?;
    let unsupported = |raw: serde_json::Value| MessageContent::Unsupported { raw_type: message.kind.clone(), raw };
    let content = match message.kind.as_str() {
        "text" => match &message.text {
            Some(text) => MessageContent::Text { body: text.body.clone() },
            None => return Err(bad("messages[].text", "a text message without text")),
        },
        "order" => match &message.order {
            Some(order) => MessageContent::CatalogOrder {
                catalog_id: order.catalog_id.clone(),
                note: order.text.clone(),
                items: order.product_items.iter().map(catalog_item).collect::<Result<_, _>>()?,
            },
            None => return Err(bad("messages[].order", "an order message without order")),
        },
        "interactive" => {
            match message.interactive.as_ref().and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref())) {
                Some(reply) => MessageContent::Interactive { reply_id: reply.id.clone(), title: reply.title.clone() },
                None => unsupported(raw),
            }
        }
        "button" => match &message.button {
            Some(button) => MessageContent::Interactive {
                reply_id: button.payload.clone().or_else(|| button.text.clone()).unwrap_or_default(),
                title: button.text.clone(),
            },
            None => unsupported(raw),
        },
        kind @ ("image" | "video" | "audio" | "document" | "sticker") => {
            let media: Option<Media> =
                raw.get(kind).cloned().map(serde_json::from_value).transpose().map_err(|e| bad("media", e))?;
            match media {
                Some(media) => MessageContent::Media {
                    media_kind: kind.to_string(),
                    media_id: media.id,
                    url: None,
                    mime_type: media.mime_type,
                    caption: media.caption,
                },
                None => unsupported(raw),
            }
        }
        "location" => match &message.location {
            Some(l) => MessageContent::Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name.clone(),
                address: l.address.clone(),
            },
            None => unsupported(raw),
        },
        "contacts" => MessageContent::Contacts { contacts: raw.get("contacts").cloned().unwrap_or_default() },
        "reaction" => match &message.reaction {
            Some(r) => MessageContent::Reaction {
                target_message_id: r.message_id.clone(),
                emoji: r.emoji.clone().filter(|e| !e.is_empty()),
            },
            None => unsupported(raw),
        },
        _ => unsupported(raw),
    };
    Ok(content)
}

fn catalog_item(item: &ProductItem) -> Result<CatalogItem, ParseError> {
    let quantity_text = json_literal(&item.quantity).map_err(|e| bad("product_items[].quantity", e))?;
    let quantity: i64 = quantity_text
        .parse()
        .map_err(|_| bad("product_items[].quantity", format!("{quantity_text} is not a whole number")))?;
    if quantity <= 0 {
        return Err(bad("product_items[].quantity", "must be positive"));
    }
    let price_text = json_literal(&item.item_price).map_err(|e| bad("product_items[].item_price", e))?;
    let unit_price = item
        .currency
        .parse::<money::Currency>()
        .ok()
        .and_then(|currency| money::Money::from_major_str(&price_text, currency).ok())
        .filter(|price| price.amount_minor >= 0);
    Ok(CatalogItem {
        product_retailer_id: item.product_retailer_id.clone(),
        quantity,
        unit_price,
        price_text,
        currency: item.currency.clone(),
    })
}
