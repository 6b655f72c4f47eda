//! Customer messages from ingest become drafts: WhatsApp catalog carts map exactly, free text is
//! parsed and matched; messages that are not orders create nothing. A message delivered again,
//! or the same text re-sent within minutes, changes nothing.

use std::sync::Arc;
use std::time::Duration;

use bus::{Envelope, Handler, HandlerError, Namespace};
use events::ingest::{MessageContent, MessageReceived};
use money::Money;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::approve::reservation_reference;
use crate::catalog_cache::CatalogCache;
use crate::domain::draft::{self, Customer, Item};
use crate::domain::parser::OrderParser;
use crate::outbound::calls::CallError;
use crate::outbound::drafts;
use crate::outbound::{DbError, settings};
use crate::propose::{self, Proposal};

pub const CONSUMER: &str = "draft-messages";

pub fn filter_subjects(namespace: &Namespace) -> Vec<String> {
    vec![namespace.event_filter("ingest", 1, "message_received")]
}

pub struct MessageEvents {
    pub namespace: Namespace,
    pub catalog: CatalogCache,
    pub parser: Arc<dyn OrderParser>,
    /// The same text from the same customer within this window is a resend, not a new order.
    pub resend_window: Duration,
}

fn db(err: DbError) -> HandlerError {
    match err {
        DbError::Unavailable(detail) => HandlerError::Transient(detail),
        DbError::Internal(detail) => HandlerError::Permanent(detail),
    }
}

fn call(err: CallError) -> HandlerError {
    match err {
        CallError::Unavailable { message, .. } => HandlerError::Transient(message),
        CallError::Refused { message, .. } => HandlerError::Permanent(message),
    }
}

fn text_hash(text: &str) -> String {
    let normalized: String = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    hex::encode(Sha256::digest(normalized.as_bytes()))
}

impl MessageEvents {
    async fn items_of(
        &self,
        event: &Envelope,
        message: &MessageReceived,
    ) -> Result<Option<(Vec<Item>, String)>, HandlerError> {
        match &message.content {
            MessageContent::Text { body } => {
                let parsed = self.parser.parse(body);
                if parsed.is_question || parsed.lines.is_empty() {
                    return Ok(None);
                }
                let snapshot = self.catalog.snapshot(event.tenant_id).await.map_err(call)?;
                let items: Vec<Item> = snapshot.items_for(&parsed.lines);
                if !items.iter().any(|i| i.sku.is_some()) {
                    // Nothing in it names a product we sell: chit-chat, not an order.
                    return Ok(None);
                }
                Ok(Some((items, body.clone())))
            }
            MessageContent::CatalogOrder { items: cart, note, .. } => {
                let snapshot = self.catalog.snapshot(event.tenant_id).await.map_err(call)?;
                let items = cart
                    .iter()
                    .map(|line| match snapshot.by_retailer_id(&line.product_retailer_id) {
                        Some(entry) => Item {
                            original_text: line.product_retailer_id.clone(),
                            sku: Some(entry.sku.clone()),
                            name: entry.name.clone(),
                            quantity: line.quantity,
                            unit_price: Some(entry.price),
                            // The cart's price is shown beside the catalog's, never used.
                            message_price: line.unit_price.filter(|p| p.currency == entry.price.currency),
                            confidence: 1.0,
                        },
                        None => Item {
                            original_text: line.product_retailer_id.clone(),
                            sku: None,
                            name: line.product_retailer_id.clone(),
                            quantity: line.quantity,
                            unit_price: None,
                            message_price: line.unit_price,
                            confidence: 0.0,
                        },
                    })
                    .collect();
                let canonical = format!(
                    "cart:{}:{}",
                    note.clone().unwrap_or_default(),
                    cart.iter()
                        .map(|l| format!("{}x{}", l.product_retailer_id, l.quantity))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                Ok(Some((items, canonical)))
            }
            _ => Ok(None),
        }
    }
}

impl Handler for MessageEvents {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        let message = event.decode::<MessageReceived>().map_err(HandlerError::Permanent)?;
        let Some((items, text)) = self.items_of(event, &message).await? else { return Ok(()) };
        let tenant_id = event.tenant_id;
        let customer_key =
            format!("{}:{}:{}", message.platform.as_str(), message.channel_id, message.customer.platform_id);
        let message_key = format!("{}:{}", message.platform.as_str(), message.message_id);
        let hash = text_hash(&text);
        if drafts::seen_message(tx, tenant_id, &message_key, &customer_key, &hash, self.resend_window)
            .await
            .map_err(db)?
        {
            return Ok(());
        }
        let settings = settings::get(tx, tenant_id).await.map_err(db)?;
        let currency = items
            .iter()
            .find_map(|i| i.unit_price.map(|p: Money| p.currency))
            .ok_or_else(|| HandlerError::Permanent("no priced item".into()))?;
        let proposal = Proposal {
            tenant_id,
            source: message.platform.as_str().to_string(),
            customer: Customer {
                name: message.customer.name.clone().unwrap_or_default(),
                phone_e164: message.customer.phone_e164.clone(),
                channel: message.platform.as_str().to_string(),
                channel_customer_id: Some(message.customer.platform_id.clone()),
            },
            customer_key: Some(customer_key.clone()),
            items,
            shipping_address: None,
            notes: String::new(),
            currency,
            cause: Some(event.clone()),
        };
        let outcome = propose::propose(tx, &self.namespace, &settings, proposal).await.map_err(db)?;
        let draft = outcome.draft();
        drafts::record_message(tx, tenant_id, &message_key, &customer_key, &hash, Some(draft.id)).await.map_err(db)?;

        // Auto-approval of trusted customers goes through the same approval path: the draft is
        // handed to the sweeper with a lease that has already run out.
        let trusted = settings.trusted_customers.iter().any(|c| c == &message.customer.platform_id);
        if settings.auto_approve && trusted && draft::approval_blockers(&draft.items).is_empty() {
            let reference = reservation_reference(draft);
            drafts::begin_approval(tx, draft.id, "auto-approve", Duration::ZERO, &reference, "auto-approve")
                .await
                .map_err(db)?;
        }
        Ok(())
    }
}
