//! Customer messages from ingest become drafts: WhatsApp catalog carts map exactly, free text is
//! parsed and matched; messages that are not orders create nothing. A message delivered again,
//! or the same text re-sent within minutes, changes nothing.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bus::consumer::BatchResults;
use bus::{BatchHandler, Envelope, HandlerError, Namespace};
use events::ingest::{MessageContent, MessageReceived};
use money::{Currency, Money};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::approve::reservation_reference;
use crate::catalog_cache::CatalogCache;
use crate::domain::draft::{self, Customer, Item};
use crate::domain::parser::OrderParser;
use crate::outbound::calls::CallError;
use crate::outbound::drafts::{self, MessageRecord};
use crate::outbound::settings::{self, Settings};
use crate::outbound::{DbError, approvals};
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

/// An order message ready to be proposed: what it says and who sent it.
struct Order<'e> {
    /// Its place in the batch.
    index: usize,
    event: &'e Envelope,
    message: MessageReceived,
    items: Vec<Item>,
    customer_key: String,
    message_key: String,
    hash: String,
}

impl Order<'_> {
    fn record(&self) -> MessageRecord<'_> {
        MessageRecord {
            tenant_id: self.event.tenant_id,
            message_key: &self.message_key,
            customer_key: &self.customer_key,
            text_hash: &self.hash,
        }
    }

    fn proposal(&self, currency: Currency) -> Proposal {
        let message = &self.message;
        Proposal {
            tenant_id: self.event.tenant_id,
            source: message.platform.as_str().to_string(),
            customer: Customer {
                name: message.customer.name.clone().unwrap_or_default(),
                phone_e164: message.customer.phone_e164.clone(),
                channel: message.platform.as_str().to_string(),
                channel_customer_id: Some(message.customer.platform_id.clone()),
            },
            customer_key: Some(self.customer_key.clone()),
            items: self.items.clone(),
            shipping_address: None,
            notes: String::new(),
            currency,
            cause: Some(self.event.clone()),
        }
    }
}

impl MessageEvents {
    /// The order a message places, if it places one; nothing is written.
    async fn order_in<'e>(&self, index: usize, event: &'e Envelope) -> Result<Option<Order<'e>>, HandlerError> {
        let message = event.decode::<MessageReceived>().map_err(HandlerError::Permanent)?;
        let Some((items, text)) = self.items_of(event, &message).await? else { return Ok(None) };
        let customer_key =
            format!("{}:{}:{}", message.platform.as_str(), message.channel_id, message.customer.platform_id);
        let message_key = format!("{}:{}", message.platform.as_str(), message.message_id);
        let hash = text_hash(&text);
        Ok(Some(Order { index, event, message, items, customer_key, message_key, hash }))
    }
}

/// Proposals waiting to be written together, in message order.
type Run<'o> = Vec<(&'o Order<'o>, Proposal)>;

impl BatchHandler for MessageEvents {
    /// One message at a time in Rust (parse, match), then the batch's writes together: one query
    /// for which messages were seen, one per tenant for settings, and [`propose::propose_many`].
    /// The outcome is what handling the messages one by one, in order, would give.
    async fn handle_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [&'a Envelope],
    ) -> Result<BatchResults, HandlerError> {
        let mut results: BatchResults = events.iter().map(|_| Ok(())).collect();
        let mut orders = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match self.order_in(index, event).await {
                Ok(Some(order)) => orders.push(order),
                Ok(None) => {}
                Err(err) => results[index] = Err(err),
            }
        }
        if orders.is_empty() {
            return Ok(results);
        }
        let records: Vec<MessageRecord<'_>> = orders.iter().map(Order::record).collect();
        let seen = drafts::seen_messages(tx, &records, self.resend_window).await.map_err(db)?;

        let mut settings_of: HashMap<Uuid, Settings> = HashMap::new();
        // Messages of this batch already proposed: their keys, and (customer, text) for resends.
        let mut keys: HashSet<(Uuid, &str)> = HashSet::new();
        let mut texts: HashSet<(Uuid, &str, &str)> = HashSet::new();
        let mut recorded: Vec<(MessageRecord<'_>, Option<Uuid>)> = Vec::with_capacity(orders.len());
        let mut run: Run<'_> = Vec::new();
        for (order, seen) in orders.iter().zip(seen) {
            let tenant_id = order.event.tenant_id;
            if seen
                || keys.contains(&(tenant_id, order.message_key.as_str()))
                || texts.contains(&(tenant_id, order.customer_key.as_str(), order.hash.as_str()))
            {
                continue;
            }
            if let Entry::Vacant(entry) = settings_of.entry(tenant_id) {
                entry.insert(settings::get(tx, tenant_id).await.map_err(db)?);
            }
            let Some(currency) = order.items.iter().find_map(|i| i.unit_price.map(|p: Money| p.currency)) else {
                results[order.index] = Err(HandlerError::Permanent("no priced item".into()));
                continue;
            };
            keys.insert((tenant_id, order.message_key.as_str()));
            texts.insert((tenant_id, order.customer_key.as_str(), order.hash.as_str()));
            run.push((order, order.proposal(currency)));

            // Auto-approval of trusted customers goes through the same approval path: the draft
            // is handed to the sweeper with a lease that has already run out. It takes the draft
            // out of review, so what follows must see that: the run is written first.
            let settings = &settings_of[&tenant_id];
            let trusted = settings.trusted_customers.iter().any(|c| c == &order.message.customer.platform_id);
            if settings.auto_approve && trusted {
                let outcomes = self.write(tx, &settings_of, std::mem::take(&mut run), &mut recorded).await?;
                if let Some(propose::Outcome::Created(draft) | propose::Outcome::Extended(draft)) = outcomes.last()
                    && draft::approval_blockers(&draft.items).is_empty()
                {
                    let reference = reservation_reference(draft);
                    let start = approvals::Start {
                        id: draft.id,
                        version: draft.version,
                        reference: &reference,
                        approved_by: "auto-approve",
                    };
                    let leased =
                        approvals::begin_many(tx, &[start], "auto-approve", Duration::ZERO).await.map_err(db)?;
                    if !leased.contains_key(&draft.id) {
                        // Written by this transaction a moment ago: nothing else can have moved it.
                        return Err(HandlerError::Permanent(format!(
                            "auto-approval could not take draft {}",
                            draft.id
                        )));
                    }
                }
            }
        }
        self.write(tx, &settings_of, run, &mut recorded).await?;
        drafts::record_messages(tx, &recorded).await.map_err(db)?;
        Ok(results)
    }
}

impl MessageEvents {
    /// Proposes a run of orders and notes which draft each went to.
    async fn write<'o>(
        &self,
        tx: &mut PgConnection,
        settings_of: &HashMap<Uuid, Settings>,
        run: Run<'o>,
        recorded: &mut Vec<(MessageRecord<'o>, Option<Uuid>)>,
    ) -> Result<Vec<propose::Outcome>, HandlerError> {
        if run.is_empty() {
            return Ok(Vec::new());
        }
        let default = Settings::default();
        let mut orders = Vec::with_capacity(run.len());
        let mut proposals = Vec::with_capacity(run.len());
        for (order, proposal) in run {
            orders.push(order);
            proposals.push((settings_of.get(&proposal.tenant_id).unwrap_or(&default), proposal));
        }
        let outcomes = propose::propose_many(tx, &self.namespace, proposals).await.map_err(db)?;
        for (order, outcome) in orders.into_iter().zip(&outcomes) {
            recorded.push((order.record(), Some(outcome.draft().id)));
        }
        Ok(outcomes)
    }
}
