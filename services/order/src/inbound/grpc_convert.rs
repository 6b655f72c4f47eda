//! Proto ⇄ domain conversions and the one error-to-status mapping of the order API.

use events::order::OrderSource;
use money::Money;
use proto::common::v1 as common;
use proto::order::v1 as pb;
use tonic::Status;

use crate::domain::lifecycle::Status as OrderStatus;
use crate::domain::parties::{Address, Customer, valid_e164};
use crate::domain::payments::PaymentStatus;
use crate::outbound::orders::{ChangeError, HistoryRow, OrderRecord, PaymentKind, PaymentRow};

pub use service_runtime::db_status;

pub fn change_status(err: &ChangeError) -> Status {
    match err {
        ChangeError::NotFound => Status::not_found("order not found"),
        ChangeError::StaleVersion { .. } => Status::aborted(err.to_string()),
        ChangeError::Illegal(illegal) => Status::failed_precondition(illegal.to_string()),
        ChangeError::Refused(reason) => Status::failed_precondition(reason.clone()),
        ChangeError::Database(err) => db_status(err),
    }
}

pub fn status_to(status: OrderStatus) -> pb::OrderStatus {
    match status {
        OrderStatus::PendingPayment => pb::OrderStatus::PendingPayment,
        OrderStatus::Confirmed => pb::OrderStatus::Confirmed,
        OrderStatus::Processing => pb::OrderStatus::Processing,
        OrderStatus::Shipped => pb::OrderStatus::Shipped,
        OrderStatus::Delivered => pb::OrderStatus::Delivered,
        OrderStatus::Returned => pb::OrderStatus::Returned,
        OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
    }
}

pub fn status_from(value: i32) -> Result<OrderStatus, Status> {
    match pb::OrderStatus::try_from(value) {
        Ok(pb::OrderStatus::PendingPayment) => Ok(OrderStatus::PendingPayment),
        Ok(pb::OrderStatus::Confirmed) => Ok(OrderStatus::Confirmed),
        Ok(pb::OrderStatus::Processing) => Ok(OrderStatus::Processing),
        Ok(pb::OrderStatus::Shipped) => Ok(OrderStatus::Shipped),
        Ok(pb::OrderStatus::Delivered) => Ok(OrderStatus::Delivered),
        Ok(pb::OrderStatus::Returned) => Ok(OrderStatus::Returned),
        Ok(pb::OrderStatus::Cancelled) => Ok(OrderStatus::Cancelled),
        Ok(pb::OrderStatus::Unspecified) | Err(_) => Err(Status::invalid_argument("status is required")),
    }
}

pub fn payment_status_to(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::Pending => pb::PaymentStatus::Pending,
        PaymentStatus::Paid => pb::PaymentStatus::Paid,
        PaymentStatus::Failed => pb::PaymentStatus::Failed,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
        PaymentStatus::PartiallyRefunded => pb::PaymentStatus::PartiallyRefunded,
    }
}

pub fn payment_status_from(value: i32) -> Result<PaymentStatus, Status> {
    match pb::PaymentStatus::try_from(value) {
        Ok(pb::PaymentStatus::Pending) => Ok(PaymentStatus::Pending),
        Ok(pb::PaymentStatus::Paid) => Ok(PaymentStatus::Paid),
        Ok(pb::PaymentStatus::Failed) => Ok(PaymentStatus::Failed),
        Ok(pb::PaymentStatus::Refunded) => Ok(PaymentStatus::Refunded),
        Ok(pb::PaymentStatus::PartiallyRefunded) => Ok(PaymentStatus::PartiallyRefunded),
        Ok(pb::PaymentStatus::Unspecified) | Err(_) => Err(Status::invalid_argument("unknown payment status")),
    }
}

pub fn source_to(source: OrderSource) -> pb::OrderSource {
    match source {
        OrderSource::Draft => pb::OrderSource::Draft,
        OrderSource::TiktokShop => pb::OrderSource::TiktokShop,
    }
}

pub fn money_to(money: Money) -> common::Money {
    common::Money { amount_minor: money.amount_minor, currency: money.currency.code().to_string() }
}

/// An optional amount in `currency`; absent means zero.
pub fn money_from(field: &str, money: Option<&common::Money>, currency: money::Currency) -> Result<Money, Status> {
    match money {
        None => Ok(Money::zero(currency)),
        Some(m) if m.currency.is_empty() && m.amount_minor == 0 => Ok(Money::zero(currency)),
        Some(m) => {
            let found: money::Currency =
                m.currency.parse().map_err(|_| Status::invalid_argument(format!("{field}: bad currency")))?;
            Ok(Money::new(m.amount_minor, found))
        }
    }
}

pub fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: i32::try_from(at.nanosecond()).unwrap_or(0) }
}

pub fn time_from(ts: Option<&prost_types::Timestamp>) -> Result<Option<time::OffsetDateTime>, Status> {
    ts.map(|t| {
        time::OffsetDateTime::from_unix_timestamp(t.seconds)
            .map(|at| at + time::Duration::nanoseconds(i64::from(t.nanos)))
            .map_err(|_| Status::invalid_argument("timestamp out of range"))
    })
    .transpose()
}

pub fn customer_from(customer: Option<pb::Customer>) -> Result<Customer, Status> {
    let customer = customer.unwrap_or_default();
    let optional = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let phone = optional(customer.phone_e164);
    if let Some(phone) = &phone
        && !valid_e164(phone)
    {
        return Err(Status::invalid_argument("customer.phone_e164 must be E.164 (+ and 8-15 digits)"));
    }
    Ok(Customer {
        name: customer.name.trim().to_string(),
        phone_e164: phone,
        email: optional(customer.email),
        channel: optional(customer.channel),
        channel_customer_id: optional(customer.channel_customer_id),
    })
}

pub fn customer_to(customer: &Customer) -> pb::Customer {
    pb::Customer {
        name: customer.name.clone(),
        phone_e164: customer.phone_e164.clone().unwrap_or_default(),
        email: customer.email.clone().unwrap_or_default(),
        channel: customer.channel.clone().unwrap_or_default(),
        channel_customer_id: customer.channel_customer_id.clone().unwrap_or_default(),
    }
}

pub fn address_from(address: Option<pb::Address>) -> Result<Option<Address>, Status> {
    let Some(a) = address else { return Ok(None) };
    let phone = Some(a.phone_e164.trim().to_string()).filter(|p| !p.is_empty());
    if let Some(phone) = &phone
        && !valid_e164(phone)
    {
        return Err(Status::invalid_argument("shipping_address.phone_e164 must be E.164"));
    }
    let address = Address {
        recipient_name: a.recipient_name.trim().to_string(),
        line1: a.line1.trim().to_string(),
        line2: a.line2.trim().to_string(),
        city: a.city.trim().to_string(),
        region: a.region.trim().to_string(),
        postal_code: a.postal_code.trim().to_string(),
        country_code: a.country_code.trim().to_uppercase(),
        phone_e164: phone,
    };
    address.validate().map_err(Status::invalid_argument)?;
    Ok(Some(address))
}

pub fn address_to(address: &Address) -> pb::Address {
    pb::Address {
        recipient_name: address.recipient_name.clone(),
        line1: address.line1.clone(),
        line2: address.line2.clone(),
        city: address.city.clone(),
        region: address.region.clone(),
        postal_code: address.postal_code.clone(),
        country_code: address.country_code.clone(),
        phone_e164: address.phone_e164.clone().unwrap_or_default(),
    }
}

fn history_to(row: HistoryRow) -> pb::StatusChange {
    pb::StatusChange {
        from: row.from.map_or(pb::OrderStatus::Unspecified, status_to) as i32,
        to: status_to(row.to) as i32,
        reason: row.reason.unwrap_or_default(),
        actor_user: row.actor_user.unwrap_or_default(),
        actor_service: row.actor_service.unwrap_or_default(),
        source: row.source,
        at: Some(timestamp(row.at)),
    }
}

fn payment_to(row: PaymentRow, currency: money::Currency) -> pb::Payment {
    pb::Payment {
        kind: match row.kind {
            PaymentKind::Payment => pb::PaymentKind::Payment,
            PaymentKind::Refund => pb::PaymentKind::Refund,
        } as i32,
        amount: Some(money_to(Money::new(row.amount_minor, currency))),
        method: row.method,
        reference: row.reference,
        recorded_by: row.recorded_by.unwrap_or_default(),
        at: Some(timestamp(row.at)),
    }
}

pub fn order_to(order: OrderRecord, history: Vec<HistoryRow>, payments: Vec<PaymentRow>) -> pb::Order {
    let currency = order.totals.total.currency;
    pb::Order {
        id: order.id.to_string(),
        code: order.code,
        status: status_to(order.status) as i32,
        payment_status: payment_status_to(order.payment_status) as i32,
        source: source_to(order.source) as i32,
        source_id: order.source_id,
        reservation_reference: order.reservation_reference,
        items: order
            .lines
            .into_iter()
            .map(|l| pb::OrderItem {
                sku: l.sku.unwrap_or_default(),
                name: l.name,
                unit_price: Some(money_to(l.unit_price)),
                quantity: l.quantity,
                line_total: Some(money_to(l.line_total)),
            })
            .collect(),
        subtotal: Some(money_to(order.totals.subtotal)),
        discount: Some(money_to(order.totals.discount)),
        tax: Some(money_to(order.totals.tax)),
        shipping: Some(money_to(order.totals.shipping)),
        total: Some(money_to(order.totals.total)),
        amount_paid: Some(money_to(Money::new(order.paid_minor - order.refunded_minor, currency))),
        customer: Some(customer_to(&order.customer)),
        shipping_address: order.shipping_address.as_ref().map(address_to),
        notes: order.notes,
        tags: order.tags,
        version: order.version,
        created_at: Some(timestamp(order.created_at)),
        updated_at: Some(timestamp(order.updated_at)),
        history: history.into_iter().map(history_to).collect(),
        payments: payments.into_iter().map(|p| payment_to(p, currency)).collect(),
        attention: order.attention,
        sync: None,
    }
}
