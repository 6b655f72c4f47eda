//! Proto ⇄ domain conversions and the one error-to-status mapping of the draft API.

use money::Money;
use proto::common::v1 as common;
use proto::draft::v1 as pb;
use tonic::Status;

use crate::approve::ApproveError;
use crate::domain::draft::{self, Address, Customer, Status as DraftStatus, valid_e164};
use crate::outbound::calls::CallError;
use crate::outbound::drafts::DraftRecord;

pub use service_runtime::db_status;

pub fn call_status(err: &CallError) -> Status {
    match err {
        CallError::Unavailable { dependency, .. } => {
            Status::unavailable(format!("{dependency} is unavailable; try again"))
        }
        CallError::Refused { code, message, .. } => Status::new(*code, message.clone()),
    }
}

pub fn approve_status(err: &ApproveError) -> Status {
    match err {
        ApproveError::NotFound => Status::not_found("draft not found"),
        ApproveError::Final(_) | ApproveError::Blocked(_) | ApproveError::Shortage(_) => {
            Status::failed_precondition(err.to_string())
        }
        ApproveError::OrderRefused(_) => Status::failed_precondition(err.to_string()),
        ApproveError::InProgress(_) => Status::unavailable(err.to_string()),
        ApproveError::Database(db) => db_status(db),
    }
}

pub fn status_to(status: DraftStatus) -> pb::DraftStatus {
    match status {
        DraftStatus::PendingReview => pb::DraftStatus::PendingReview,
        DraftStatus::Approving => pb::DraftStatus::Approving,
        DraftStatus::Approved => pb::DraftStatus::Approved,
        DraftStatus::Rejected => pb::DraftStatus::Rejected,
        DraftStatus::Expired => pb::DraftStatus::Expired,
    }
}

pub fn status_from(value: i32) -> Result<DraftStatus, Status> {
    match pb::DraftStatus::try_from(value) {
        Ok(pb::DraftStatus::PendingReview) => Ok(DraftStatus::PendingReview),
        Ok(pb::DraftStatus::Approving) => Ok(DraftStatus::Approving),
        Ok(pb::DraftStatus::Approved) => Ok(DraftStatus::Approved),
        Ok(pb::DraftStatus::Rejected) => Ok(DraftStatus::Rejected),
        Ok(pb::DraftStatus::Expired) => Ok(DraftStatus::Expired),
        Ok(pb::DraftStatus::Unspecified) | Err(_) => Err(Status::invalid_argument("unknown draft status")),
    }
}

pub fn money_to(money: Money) -> common::Money {
    common::Money { amount_minor: money.amount_minor, currency: money.currency.code().to_string() }
}

/// An amount in the draft's currency; `None` keeps the current value.
pub fn money_from(
    field: &str,
    money: Option<&common::Money>,
    currency: money::Currency,
) -> Result<Option<Money>, Status> {
    let Some(money) = money else { return Ok(None) };
    let found: money::Currency =
        money.currency.parse().map_err(|_| Status::invalid_argument(format!("{field}: bad currency")))?;
    if found != currency {
        return Err(Status::invalid_argument(format!("{field} must be in {currency}")));
    }
    if money.amount_minor < 0 {
        return Err(Status::invalid_argument(format!("{field} must not be negative")));
    }
    Ok(Some(Money::new(money.amount_minor, currency)))
}

pub fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: i32::try_from(at.nanosecond()).unwrap_or(0) }
}

pub fn customer_from(customer: Option<pb::Customer>, default_channel: &str) -> Result<Customer, Status> {
    let customer = customer.unwrap_or_default();
    let phone = Some(customer.phone_e164.trim().to_string()).filter(|p| !p.is_empty());
    if let Some(phone) = &phone
        && !valid_e164(phone)
    {
        return Err(Status::invalid_argument("customer.phone_e164 must be E.164 (+ and 8-15 digits)"));
    }
    let channel = if customer.channel.trim().is_empty() {
        default_channel.to_string()
    } else {
        customer.channel.trim().to_string()
    };
    Ok(Customer {
        name: customer.name.trim().to_string(),
        phone_e164: phone,
        channel,
        channel_customer_id: Some(customer.channel_customer_id.trim().to_string()).filter(|c| !c.is_empty()),
    })
}

pub fn address_from(address: Option<pb::Address>) -> Result<Option<Address>, Status> {
    let Some(a) = address else { return Ok(None) };
    let phone = Some(a.phone_e164.trim().to_string()).filter(|p| !p.is_empty());
    if phone.as_deref().is_some_and(|p| !valid_e164(p)) {
        return Err(Status::invalid_argument("shipping_address.phone_e164 must be E.164"));
    }
    let country = a.country_code.trim().to_uppercase();
    if a.line1.trim().is_empty() || a.city.trim().is_empty() || country.len() != 2 {
        return Err(Status::invalid_argument("an address needs line1, city and a two-letter country_code"));
    }
    Ok(Some(Address {
        recipient_name: a.recipient_name.trim().to_string(),
        line1: a.line1.trim().to_string(),
        line2: a.line2.trim().to_string(),
        city: a.city.trim().to_string(),
        region: a.region.trim().to_string(),
        postal_code: a.postal_code.trim().to_string(),
        country_code: country,
        phone_e164: phone,
    }))
}

pub fn draft_to(draft: DraftRecord) -> pb::Draft {
    let blockers =
        if draft.status == DraftStatus::PendingReview { draft::approval_blockers(&draft.items) } else { Vec::new() };
    let customer = &draft.customer;
    pb::Draft {
        id: draft.id.to_string(),
        status: status_to(draft.status) as i32,
        source: draft.source.clone(),
        items: draft
            .items
            .iter()
            .map(|item| pb::DraftItem {
                original_text: item.original_text.clone(),
                sku: item.sku.clone().unwrap_or_default(),
                name: item.name.clone(),
                quantity: item.quantity,
                unit_price: item.unit_price.map(money_to),
                message_price: item.message_price.map(money_to),
                price_mismatch: item.price_mismatch(),
                confidence: item.confidence,
            })
            .collect(),
        customer: Some(pb::Customer {
            name: customer.name.clone(),
            phone_e164: customer.phone_e164.clone().unwrap_or_default(),
            channel: customer.channel.clone(),
            channel_customer_id: customer.channel_customer_id.clone().unwrap_or_default(),
        }),
        shipping_address: draft.shipping_address.as_ref().map(|a| pb::Address {
            recipient_name: a.recipient_name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country_code: a.country_code.clone(),
            phone_e164: a.phone_e164.clone().unwrap_or_default(),
        }),
        subtotal: Some(money_to(draft.totals.subtotal)),
        discount: Some(money_to(draft.totals.discount)),
        tax: Some(money_to(draft.totals.tax)),
        shipping: Some(money_to(draft.totals.shipping)),
        total: Some(money_to(draft.totals.total)),
        notes: draft.notes.clone(),
        version: draft.version,
        created_at: Some(timestamp(draft.created_at)),
        updated_at: Some(timestamp(draft.updated_at)),
        expires_at: Some(timestamp(draft.expires_at)),
        order_id: draft.order_id.map(|id| id.to_string()).unwrap_or_default(),
        order_code: draft.order_code.clone().unwrap_or_default(),
        rejected_reason: draft.rejected_reason.clone().unwrap_or_default(),
        blockers,
    }
}
