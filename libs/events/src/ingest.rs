//! What ingest publishes: one event per customer message, status, echo or TikTok Shop notification.

use money::Money;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Whatsapp,
    Instagram,
    TiktokShop,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Whatsapp => "whatsapp",
            Platform::Instagram => "instagram",
            Platform::TiktokShop => "tiktok_shop",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "whatsapp" => Some(Platform::Whatsapp),
            "instagram" => Some(Platform::Instagram),
            "tiktok_shop" => Some(Platform::TiktokShop),
            _ => None,
        }
    }
}

/// The customer as the platform identifies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// WhatsApp `wa_id`, or the Instagram-scoped id (IGSID).
    pub platform_id: String,
    pub name: Option<String>,
    /// E.164 (`+16505551234`) where the platform gives a phone number (WhatsApp).
    pub phone_e164: Option<String>,
}

/// One line of a WhatsApp catalog cart. The price is what the customer's app showed; orderflow
/// prices orders from the catalog and only compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub product_retailer_id: String,
    pub quantity: i64,
    /// Exact conversion of `item_price`; `None` when the text is not exact for the currency.
    pub unit_price: Option<Money>,
    /// `item_price` exactly as sent (a JSON number in major units, kept as its literal text).
    pub price_text: String,
    pub currency: String,
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    CatalogOrder {
        catalog_id: Option<String>,
        note: Option<String>,
        items: Vec<CatalogItem>,
    },
    /// A button, list, quick reply or postback choice.
    Interactive {
        reply_id: String,
        title: Option<String>,
    },
    Media {
        media_kind: String,
        media_id: Option<String>,
        url: Option<String>,
        mime_type: Option<String>,
        caption: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Contacts {
        contacts: serde_json::Value,
    },
    /// `emoji: None` is a reaction removed.
    Reaction {
        target_message_id: String,
        emoji: Option<String>,
    },
    StoryReply {
        story_id: Option<String>,
        story_url: Option<String>,
        text: Option<String>,
    },
    /// A type orderflow does not interpret yet: published as such, never dropped.
    Unsupported {
        raw_type: String,
        raw: serde_json::Value,
    },
}

/// A customer sent something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageReceived {
    pub platform: Platform,
    /// WhatsApp `phone_number_id` or the Instagram professional account id.
    pub channel_id: String,
    /// WhatsApp `wamid.…` or Instagram `mid`.
    pub message_id: String,
    pub customer: Customer,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub content: MessageContent,
    /// The message this one replies to.
    pub reply_to: Option<String>,
    /// Click-to-WhatsApp or Instagram ad referral, as sent.
    pub referral: Option<serde_json::Value>,
}

impl bus::Event for MessageReceived {
    const DOMAIN: &'static str = "ingest";
    const NAME: &'static str = "message_received";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Anything else Meta adds (e.g. `deleted`, `warning`), kept rather than refused.
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusError {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
}

/// A message orderflow sent changed delivery status (sent, delivered, read, failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatusUpdated {
    pub platform: Platform,
    pub channel_id: String,
    /// Our outbound message id (`wamid.…`, or the Instagram `mid` that was read).
    pub message_id: String,
    pub status: DeliveryStatus,
    pub raw_status: String,
    pub recipient_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub errors: Vec<StatusError>,
}

impl bus::Event for MessageStatusUpdated {
    const DOMAIN: &'static str = "ingest";
    const NAME: &'static str = "message_status_updated";
    const VERSION: u32 = 1;
}

/// An echo of a message the business sent (Instagram `is_echo`): not a customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoReceived {
    pub platform: Platform,
    pub channel_id: String,
    pub message_id: String,
    pub recipient_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub text: Option<String>,
}

impl bus::Event for EchoReceived {
    const DOMAIN: &'static str = "ingest";
    const NAME: &'static str = "echo_received";
    const VERSION: u32 = 1;
}

/// What a TikTok Shop notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TiktokNotificationKind {
    OrderStatusChange,
    PackageUpdate,
    ProductStatusChange,
    SellerDeauthorization,
    CancellationStatusChange,
    ReturnStatusChange,
    Other,
}

impl TiktokNotificationKind {
    pub fn from_type(notification_type: i64) -> Self {
        match notification_type {
            1 => Self::OrderStatusChange,
            4 => Self::PackageUpdate,
            5 => Self::ProductStatusChange,
            6 => Self::SellerDeauthorization,
            11 => Self::CancellationStatusChange,
            12 => Self::ReturnStatusChange,
            _ => Self::Other,
        }
    }
}

/// A TikTok Shop webhook: a signal to fetch the order detail from the API, not the order itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiktokShopNotification {
    pub shop_id: String,
    pub notification_id: String,
    pub notification_type: i64,
    pub kind: TiktokNotificationKind,
    /// Ids are decimal strings: they exceed 2^53 and never pass through a float.
    pub order_id: Option<String>,
    /// `order_status`, `cancel_status` or `return_status`, as sent.
    pub status: Option<String>,
    /// The platform's update time (epoch seconds), used to order out-of-order notifications.
    pub update_time: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// The notification's `data` object as its original JSON text (big ids intact).
    pub raw_data: String,
}

impl bus::Event for TiktokShopNotification {
    const DOMAIN: &'static str = "ingest";
    const NAME: &'static str = "tiktok_shop_notification";
    const VERSION: u32 = 1;
}
