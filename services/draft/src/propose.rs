//! The one way a draft comes into being: messages (the consumer), a seller typing an order (the
//! API) and auto-approval all go through [`propose`]. A proposal from a customer who already has
//! a draft waiting for review adds to it instead of opening a second one.

use std::collections::HashMap;
use std::time::Duration;

use bus::outbox::OutboxRow;
use bus::{Envelope, Namespace};
use events::draft::{DraftCreated, DraftUpdated};
use money::{Currency, Money};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::draft::{self, Address, Customer, Item, Status};
use crate::outbound::DbError;
use crate::outbound::drafts::{self, DraftRecord};
use crate::outbound::settings::Settings;

pub struct Proposal {
    pub tenant_id: Uuid,
    /// whatsapp, instagram or manual.
    pub source: String,
    pub customer: Customer,
    /// platform:channel:customer; `None` for a draft of its own (manual).
    pub customer_key: Option<String>,
    pub items: Vec<Item>,
    pub shipping_address: Option<Address>,
    pub notes: String,
    pub currency: Currency,
    /// The event that caused it, for causation ids.
    pub cause: Option<Envelope>,
}

#[derive(Debug)]
pub enum Outcome {
    Created(DraftRecord),
    Extended(DraftRecord),
}

impl Outcome {
    pub fn draft(&self) -> &DraftRecord {
        match self {
            Outcome::Created(d) | Outcome::Extended(d) => d,
        }
    }
}

/// Creates a draft, or extends the customer's open one, inside the caller's transaction.
pub async fn propose(
    conn: &mut PgConnection,
    namespace: &Namespace,
    settings: &Settings,
    proposal: Proposal,
) -> Result<Outcome, DbError> {
    propose_many(conn, namespace, vec![(settings, proposal)])
        .await?
        .pop()
        .ok_or_else(|| DbError::Internal("no outcome for a proposal".into()))
}

/// [`propose`] for several proposals, in order, inside the caller's transaction, each with its
/// tenant's settings. The outcome is what proposing them one by one would give: a later proposal
/// from a customer extends the draft an earlier one opened. New drafts are written together, in
/// one statement per table, as are the events.
pub async fn propose_many(
    conn: &mut PgConnection,
    namespace: &Namespace,
    proposals: Vec<(&Settings, Proposal)>,
) -> Result<Vec<Outcome>, DbError> {
    let mut customers: Vec<(Uuid, &str)> =
        proposals.iter().filter_map(|(_, p)| p.customer_key.as_deref().map(|key| (p.tenant_id, key))).collect();
    customers.sort_unstable();
    customers.dedup();
    // Every draft this call may touch, and whether it is new (written at the end) or already in
    // the database (saved at each change, which bumps its version there).
    let mut drafts: Vec<(DraftRecord, bool)> =
        drafts::open_for_customers(conn, &customers).await?.into_iter().map(|d| (d, false)).collect();
    let mut open: HashMap<(Uuid, String), usize> =
        drafts.iter().enumerate().map(|(i, (d, _))| ((d.tenant_id, d.customer_key.clone()), i)).collect();

    let mut events = Vec::with_capacity(proposals.len());
    let mut outcomes = Vec::with_capacity(proposals.len());
    for (settings, proposal) in proposals {
        let customer = proposal.customer_key.clone().map(|key| (proposal.tenant_id, key));
        if let Some(&i) = customer.as_ref().and_then(|c| open.get(c))
            && drafts[i].0.currency == proposal.currency
        {
            let (draft, new) = &mut drafts[i];
            draft::merge(&mut draft.items, proposal.items);
            draft.totals = draft::totals(
                draft.currency,
                &draft.items,
                draft.totals.discount,
                draft.totals.tax,
                draft.totals.shipping,
            )
            .map_err(|e| DbError::Internal(e.to_string()))?;
            if *new {
                draft.version += 1;
            } else {
                drafts::save(conn, draft).await?;
            }
            let event = DraftUpdated {
                draft_id: draft.id.to_string(),
                version: draft.version,
                cause: "follow-up message".into(),
                total_minor: draft.totals.total.amount_minor,
            };
            let envelope =
                Envelope::new(draft.tenant_id, format!("draft:{}", draft.id), event, proposal.cause.as_ref());
            events.push(OutboxRow::for_event(namespace, envelope)?);
            outcomes.push(Outcome::Extended(draft.clone()));
            continue;
        }

        let cause = proposal.cause.clone();
        let record = new_draft(settings, proposal)?;
        let event = DraftCreated {
            draft_id: record.id.to_string(),
            source: record.source.clone(),
            customer_key: record.customer_key.clone(),
            items: record.items.len(),
            unmatched_items: record.items.iter().filter(|i| i.sku.is_none()).count(),
            currency: record.currency.code().to_string(),
            total_minor: record.totals.total.amount_minor,
        };
        let envelope = Envelope::new(record.tenant_id, format!("draft:{}", record.id), event, cause.as_ref());
        events.push(OutboxRow::for_event(namespace, envelope)?);
        outcomes.push(Outcome::Created(record.clone()));
        if let Some(customer) = customer {
            open.insert(customer, drafts.len());
        }
        drafts.push((record, true));
    }

    let new: Vec<&DraftRecord> = drafts.iter().filter(|(_, new)| *new).map(|(d, _)| d).collect();
    drafts::insert_many(conn, &new).await?;
    bus::outbox::enqueue_many(conn, &events).await?;
    Ok(outcomes)
}

/// A draft waiting for review, with the tenant's time to live.
fn new_draft(settings: &Settings, proposal: Proposal) -> Result<DraftRecord, DbError> {
    let id = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let zero = Money::zero(proposal.currency);
    let totals = draft::totals(proposal.currency, &proposal.items, zero, zero, zero)
        .map_err(|e| DbError::Internal(e.to_string()))?;
    let ttl = Duration::from_secs(u64::try_from(settings.ttl_minutes.max(1)).unwrap_or(1440) * 60);
    Ok(DraftRecord {
        id,
        tenant_id: proposal.tenant_id,
        status: Status::PendingReview,
        source: proposal.source,
        customer_key: proposal.customer_key.unwrap_or_else(|| format!("manual:{id}")),
        customer: proposal.customer,
        shipping_address: proposal.shipping_address,
        currency: proposal.currency,
        items: proposal.items,
        totals,
        notes: proposal.notes,
        version: 1,
        expires_at: now + ttl,
        created_at: now,
        updated_at: now,
        lease_owner: None,
        lease_until: None,
        reservation_reference: None,
        order_id: None,
        order_code: None,
        rejected_reason: None,
    })
}
