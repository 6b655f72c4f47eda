//! Inventory tells the order service when an order that arrived without a reservation (TikTok
//! Shop) could not be reserved: the order is flagged for attention, never silently dropped.

use bus::{Envelope, Handler, HandlerError, Namespace};
use events::inventory::ReservationShortage;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::outbound::DbError;
use crate::outbound::orders::{self, Actor, ChangeSource};

pub const CONSUMER: &str = "order-inventory-events";

pub fn filter_subjects(namespace: &Namespace) -> Vec<String> {
    vec![namespace.event_filter("inventory", 1, "reservation_shortage")]
}

pub struct InventoryEvents;

impl Handler for InventoryEvents {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        let shortage = event.decode::<ReservationShortage>().map_err(HandlerError::Permanent)?;
        let order_id: Uuid =
            shortage.order_id.parse().map_err(|_| HandlerError::Permanent("order_id is not a UUID".into()))?;
        let actor = Actor {
            user: None,
            service: Some("inventory".into()),
            source: ChangeSource::System,
            tracking_number: None,
            shipping_provider_id: None,
        };
        let detail = serde_json::to_value(&shortage.short).unwrap_or_default();
        match orders::flag(tx, event.tenant_id, order_id, "stock_shortage", detail, &actor).await {
            Ok(_) => Ok(()),
            Err(DbError::Unavailable(detail)) => Err(HandlerError::Transient(detail)),
            Err(DbError::Internal(detail)) => Err(HandlerError::Permanent(detail)),
        }
    }
}
