//! The one way a draft comes into being: messages (the consumer), a seller typing an order (the
//! API) and auto-approval all go through [`propose`]. A proposal from a customer who already has
//! a draft waiting for review adds to it instead of opening a second one.

use std::time::Duration;

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
    let zero = Money::zero(proposal.currency);
    if let Some(key) = &proposal.customer_key
        && let Some(mut open) = drafts::open_for_customer(conn, proposal.tenant_id, key).await?
        && open.currency == proposal.currency
    {
        draft::merge(&mut open.items, proposal.items);
        open.totals =
            draft::totals(open.currency, &open.items, open.totals.discount, open.totals.tax, open.totals.shipping)
                .map_err(|e| DbError::Internal(e.to_string()))?;
        drafts::save(conn, &mut open).await?;
        let event = DraftUpdated {
            draft_id: open.id.to_string(),
            version: open.version,
            cause: "follow-up message".into(),
            total_minor: open.totals.total.amount_minor,
        };
        let envelope = Envelope::new(open.tenant_id, format!("draft:{}", open.id), event, proposal.cause.as_ref());
        bus::outbox::enqueue(conn, namespace, envelope).await?;
        return Ok(Outcome::Extended(open));
    }

    let id = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let totals = draft::totals(proposal.currency, &proposal.items, zero, zero, zero)
        .map_err(|e| DbError::Internal(e.to_string()))?;
    let ttl = Duration::from_secs(u64::try_from(settings.ttl_minutes.max(1)).unwrap_or(1440) * 60);
    let record = DraftRecord {
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
    };
    drafts::insert(conn, &record).await?;
    let event = DraftCreated {
        draft_id: id.to_string(),
        source: record.source.clone(),
        customer_key: record.customer_key.clone(),
        items: record.items.len(),
        unmatched_items: record.items.iter().filter(|i| i.sku.is_none()).count(),
        currency: record.currency.code().to_string(),
        total_minor: record.totals.total.amount_minor,
    };
    let envelope = Envelope::new(record.tenant_id, format!("draft:{id}"), event, proposal.cause.as_ref());
    bus::outbox::enqueue(conn, namespace, envelope).await?;
    Ok(Outcome::Created(record))
}
