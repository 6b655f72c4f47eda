//! What the draft service publishes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftCreated {
    pub draft_id: String,
    pub source: String,
    pub customer_key: String,
    pub items: usize,
    pub unmatched_items: usize,
    pub currency: String,
    pub total_minor: i64,
}

impl bus::Event for DraftCreated {
    const DOMAIN: &'static str = "draft";
    const NAME: &'static str = "created";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftUpdated {
    pub draft_id: String,
    pub version: i64,
    /// What changed it: a follow-up message, or a person's edit.
    pub cause: String,
    pub total_minor: i64,
}

impl bus::Event for DraftUpdated {
    const DOMAIN: &'static str = "draft";
    const NAME: &'static str = "updated";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftApproved {
    pub draft_id: String,
    pub order_id: String,
    pub order_code: String,
}

impl bus::Event for DraftApproved {
    const DOMAIN: &'static str = "draft";
    const NAME: &'static str = "approved";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftRejected {
    pub draft_id: String,
    pub reason: String,
}

impl bus::Event for DraftRejected {
    const DOMAIN: &'static str = "draft";
    const NAME: &'static str = "rejected";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftExpired {
    pub draft_id: String,
}

impl bus::Event for DraftExpired {
    const DOMAIN: &'static str = "draft";
    const NAME: &'static str = "expired";
    const VERSION: u32 = 1;
}
