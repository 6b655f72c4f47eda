//! What the order service publishes. Each event carries the order's items and its reservation
//! reference, so inventory can reserve, release, commit or restock without calling back.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// `None` for a TikTok Shop item not mapped to the catalog.
    pub sku: Option<String>,
    pub quantity: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSource {
    Draft,
    TiktokShop,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    pub order_code: String,
    pub source: OrderSource,
    pub source_id: String,
    pub status: String,
    /// The key of this order's stock reservation.
    pub reservation_reference: String,
    /// True when the stock is already held (a draft's approval reserved it); false when
    /// inventory must reserve it now (TikTok Shop orders).
    pub reservation_held: bool,
    pub items: Vec<OrderLine>,
    pub currency: String,
    pub total_minor: i64,
}

impl bus::Event for OrderCreated {
    const DOMAIN: &'static str = "order";
    const NAME: &'static str = "created";
    const VERSION: u32 = 1;
}

/// One event per transition, `shipped` and `returned` included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusChanged {
    pub order_id: String,
    pub from: String,
    pub to: String,
    pub reason: Option<String>,
    pub version: i64,
    pub reservation_reference: String,
    pub items: Vec<OrderLine>,
}

impl bus::Event for OrderStatusChanged {
    const DOMAIN: &'static str = "order";
    const NAME: &'static str = "status_changed";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
    pub reason: String,
    pub reservation_reference: String,
    pub items: Vec<OrderLine>,
}

impl bus::Event for OrderCancelled {
    const DOMAIN: &'static str = "order";
    const NAME: &'static str = "cancelled";
    const VERSION: u32 = 1;
}
