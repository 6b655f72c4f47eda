//! What inventory publishes.

use serde::{Deserialize, Serialize};

/// The tenant's catalog changed; the draft service refreshes its matcher snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogChanged {
    pub catalog_version: i64,
    /// The SKUs written (at most 1,000; `truncated` says there were more).
    pub skus: Vec<String>,
    pub truncated: bool,
}

impl bus::Event for CatalogChanged {
    const DOMAIN: &'static str = "inventory";
    const NAME: &'static str = "catalog_changed";
    const VERSION: u32 = 1;
}

/// Available stock fell below the SKU's threshold (published once per crossing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LowStock {
    pub sku: String,
    pub location: String,
    pub available: i64,
    pub threshold: i64,
}

impl bus::Event for LowStock {
    const DOMAIN: &'static str = "inventory";
    const NAME: &'static str = "low_stock";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortItem {
    pub sku: String,
    pub requested: i64,
    pub available: i64,
}

/// An order that arrived without a reservation (TikTok Shop) could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationShortage {
    pub reference: String,
    pub order_id: String,
    pub short: Vec<ShortItem>,
}

impl bus::Event for ReservationShortage {
    const DOMAIN: &'static str = "inventory";
    const NAME: &'static str = "reservation_shortage";
    const VERSION: u32 = 1;
}

/// A held reservation was released, committed or restocked: for audits and for the order service
/// to show what happened to an order's stock (new holds are not announced: they are the hot path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationChanged {
    pub reference: String,
    pub status: String,
    pub reason: Option<String>,
}

impl bus::Event for ReservationChanged {
    const DOMAIN: &'static str = "inventory";
    const NAME: &'static str = "reservation_changed";
    const VERSION: u32 = 1;
}
