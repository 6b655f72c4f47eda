//! Proto ⇄ domain conversions and the one error-to-status mapping of the inventory API.

use std::collections::BTreeMap;

use money::Money;
use proto::common::v1 as common;
use proto::inventory::v1 as pb;
use tonic::Status;

use crate::domain::catalog::{RawItem, RowError};
use crate::domain::reservations::{Line, Short, Status as ReservationStatus, StockKey};
use crate::outbound::catalog::StoredItem;
use crate::outbound::stock::{AdjustError, ChangeError, Reservation, ReserveError, StockRow};

pub const DEFAULT_LOCATION: &str = "default";

/// No line asks for more than this: keeps every sum far from overflowing.
pub const MAX_QUANTITY: i64 = 1_000_000;

pub fn location(value: &str) -> String {
    let value = value.trim();
    if value.is_empty() { DEFAULT_LOCATION.to_string() } else { value.to_string() }
}

pub use service_runtime::db_status;

fn describe_short(short: &[Short]) -> String {
    short
        .iter()
        .map(|s| format!("{} (requested {}, available {})", s.sku, s.requested, s.available))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn reserve_status(err: &ReserveError) -> Status {
    match err {
        ReserveError::Shortage(short) => {
            Status::failed_precondition(format!("not enough stock: {}", describe_short(short)))
        }
        ReserveError::ReferenceReused(reference) => {
            Status::already_exists(format!("reference {reference} is already used for other items"))
        }
        ReserveError::Database(err) => db_status(err),
    }
}

pub fn change_status(err: &ChangeError) -> Status {
    match err {
        ChangeError::NotFound => Status::not_found("reservation not found"),
        ChangeError::Refused { current, wanted } => {
            Status::failed_precondition(format!("reservation is {current}; it cannot be {wanted}"))
        }
        ChangeError::Database(err) => db_status(err),
    }
}

pub fn adjust_status(err: &AdjustError) -> Status {
    match err {
        AdjustError::UnknownSku => Status::not_found("sku not found in the catalog"),
        AdjustError::BelowReserved { reserved } => {
            Status::failed_precondition(format!("on hand would fall below what is reserved ({reserved}) or below zero"))
        }
        AdjustError::Database(err) => db_status(err),
    }
}

pub fn money_to(money: Money) -> common::Money {
    common::Money { amount_minor: money.amount_minor, currency: money.currency.code().to_string() }
}

pub fn money_from(money: Option<&common::Money>) -> Result<Option<Money>, String> {
    money
        .map(|m| Ok(Money::new(m.amount_minor, m.currency.parse().map_err(|e: money::Error| e.to_string())?)))
        .transpose()
}

pub fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: i32::try_from(at.nanosecond()).unwrap_or(0) }
}

pub fn item_to(item: StoredItem) -> pb::CatalogItem {
    pb::CatalogItem {
        sku: item.sku,
        name: item.name,
        attributes: item.attributes.into_iter().collect(),
        price: Some(money_to(item.price)),
        active: item.active,
        retailer_id: item.retailer_id.unwrap_or_default(),
        product_id: item.product_id.unwrap_or_default(),
        updated_at: Some(timestamp(item.updated_at)),
    }
}

/// A request row as a raw item; a bad price becomes a row error later.
pub fn raw_from(input: pb::CatalogItemInput) -> Result<RawItem, String> {
    Ok(RawItem {
        sku: input.sku,
        name: input.name,
        price: money_from(input.price.as_ref())?,
        price_text: None,
        attributes: input.attributes.into_iter().collect::<BTreeMap<_, _>>(),
        active: input.active,
        retailer_id: input.retailer_id,
        product_id: input.product_id,
    })
}

pub fn row_error_to(error: RowError) -> pb::RowError {
    pb::RowError { line: i32::try_from(error.line).unwrap_or(i32::MAX), sku: error.sku, reason: error.reason }
}

pub fn stock_to(row: StockRow) -> pb::StockLevel {
    pb::StockLevel {
        sku: row.key.sku,
        location: row.key.location,
        on_hand: row.on_hand,
        reserved: row.reserved,
        available: row.on_hand - row.reserved,
        low_stock_threshold: row.threshold,
    }
}

pub fn lines_from(items: &[pb::ReserveItem]) -> Result<Vec<Line>, Status> {
    if items.is_empty() {
        return Err(Status::invalid_argument("items are required"));
    }
    items
        .iter()
        .map(|item| {
            let sku = crate::domain::catalog::Sku::parse(&item.sku).map_err(Status::invalid_argument)?;
            if item.quantity <= 0 || item.quantity > MAX_QUANTITY {
                return Err(Status::invalid_argument(format!(
                    "quantity of {} must be between 1 and {MAX_QUANTITY}",
                    item.sku
                )));
            }
            Ok(Line {
                key: StockKey { sku: sku.as_str().to_string(), location: location(&item.location) },
                quantity: item.quantity,
            })
        })
        .collect()
}

pub fn reservation_to(reservation: Reservation) -> pb::Reservation {
    let status = match reservation.status {
        ReservationStatus::Held => pb::ReservationStatus::Held,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Committed => pb::ReservationStatus::Committed,
        ReservationStatus::Restocked => pb::ReservationStatus::Restocked,
    };
    pb::Reservation {
        reference: reservation.reference,
        status: status as i32,
        items: reservation
            .lines
            .into_iter()
            .map(|l| pb::ReserveItem { sku: l.key.sku, quantity: l.quantity, location: l.key.location })
            .collect(),
        created_at: Some(timestamp(reservation.created_at)),
    }
}

pub fn reference(value: &str) -> Result<String, Status> {
    let value = value.trim();
    if value.is_empty() || value.len() > 200 {
        return Err(Status::invalid_argument("reference must be 1-200 characters"));
    }
    Ok(value.to_string())
}
