//! Reacting to the order lifecycle, idempotently (the bus's inbox plus reservation states):
//! orders that arrive without a reservation (TikTok Shop) reserve on `order.created`, a
//! shortage is published for the order service to show; `order.cancelled` releases; shipping
//! commits; a return restocks.

use bus::{Envelope, Handler, HandlerError, Namespace};
use events::inventory::{ReservationShortage, ShortItem};
use events::order::{OrderCancelled, OrderCreated, OrderLine, OrderStatusChanged};
use sqlx::PgConnection;

use crate::domain::reservations::{Line, Status, StockKey};
use crate::inbound::grpc_convert::DEFAULT_LOCATION;
use crate::outbound::DbError;
use crate::outbound::stock::{self, ChangeError, ReserveError, ReserveJob};

pub const CONSUMER: &str = "inventory-order-events";

pub fn filter_subjects(namespace: &Namespace) -> Vec<String> {
    vec![
        namespace.event_filter("order", 1, "created"),
        namespace.event_filter("order", 1, "status_changed"),
        namespace.event_filter("order", 1, "cancelled"),
    ]
}

pub struct OrderEvents {
    pub namespace: Namespace,
}

fn db(err: DbError) -> HandlerError {
    match err {
        DbError::Unavailable(detail) => HandlerError::Transient(detail),
        DbError::Internal(detail) => HandlerError::Permanent(detail),
    }
}

fn lines(items: &[OrderLine]) -> Vec<Line> {
    items
        .iter()
        .filter_map(|item| {
            let sku = item.sku.clone()?;
            Some(Line { key: StockKey { sku, location: DEFAULT_LOCATION.into() }, quantity: item.quantity })
        })
        .filter(|line| line.quantity > 0 && line.quantity <= crate::inbound::grpc_convert::MAX_QUANTITY)
        .collect()
}

impl OrderEvents {
    async fn created(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
        created: OrderCreated,
    ) -> Result<(), HandlerError> {
        let lines = lines(&created.items);
        if created.reservation_held || lines.is_empty() {
            return Ok(());
        }
        let job = ReserveJob {
            tenant_id: event.tenant_id,
            reference: created.reservation_reference.clone(),
            lines,
            actor: "order.created".into(),
        };
        let outcome =
            stock::reserve_batch(tx, &self.namespace, std::slice::from_ref(&job)).await.map_err(db)?.remove(0);
        match outcome {
            Ok(_) => Ok(()),
            Err(ReserveError::Shortage(short)) => {
                tracing::warn!(order_id = %created.order_id, "order arrived without enough stock; publishing the shortage");
                let shortage = ReservationShortage {
                    reference: created.reservation_reference,
                    order_id: created.order_id.clone(),
                    short: short
                        .into_iter()
                        .map(|s| ShortItem { sku: s.sku, requested: s.requested, available: s.available })
                        .collect(),
                };
                let envelope =
                    Envelope::new(event.tenant_id, format!("order:{}", created.order_id), shortage, Some(event));
                bus::outbox::enqueue(tx, &self.namespace, envelope).await.map_err(|e| db(e.into()))
            }
            Err(ReserveError::ReferenceReused(reference)) => {
                Err(HandlerError::Permanent(format!("reservation {reference} already exists with other items")))
            }
            Err(ReserveError::Database(err)) => Err(match err.as_ref() {
                DbError::Unavailable(d) => HandlerError::Transient(d.clone()),
                DbError::Internal(d) => HandlerError::Permanent(d.clone()),
            }),
        }
    }

    async fn change(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
        reference: &str,
        wanted: Status,
        reason: &str,
    ) -> Result<(), HandlerError> {
        match stock::change_reservation(
            tx,
            &self.namespace,
            event.tenant_id,
            reference,
            wanted,
            Some(reason),
            "order events",
        )
        .await
        {
            Ok(_) => Ok(()),
            // Nothing was reserved (e.g. an order whose items are all unmapped): nothing to move.
            Err(ChangeError::NotFound) => Ok(()),
            Err(ChangeError::Refused { current, wanted }) => {
                Err(HandlerError::Permanent(format!("reservation {reference} is {current}; cannot be {wanted}")))
            }
            Err(ChangeError::Database(err)) => Err(db(err)),
        }
    }
}

impl Handler for OrderEvents {
    /// Most orders come from an approved draft whose stock is already held, and most status
    /// changes move no stock: those are acked without a transaction.
    fn wants(&self, event: &Envelope) -> bool {
        if event.is::<OrderCreated>() {
            let created = event.decode::<OrderCreated>().ok();
            created.is_none_or(|created| !created.reservation_held && !lines(&created.items).is_empty())
        } else if event.is::<OrderStatusChanged>() {
            let changed = event.decode::<OrderStatusChanged>().ok();
            changed.is_none_or(|changed| matches!(changed.to.as_str(), "shipped" | "returned"))
        } else {
            true
        }
    }

    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        if event.is::<OrderCreated>() {
            let created = event.decode::<OrderCreated>().map_err(HandlerError::Permanent)?;
            self.created(tx, event, created).await
        } else if event.is::<OrderCancelled>() {
            let cancelled = event.decode::<OrderCancelled>().map_err(HandlerError::Permanent)?;
            self.change(tx, event, &cancelled.reservation_reference, Status::Released, &cancelled.reason).await
        } else if event.is::<OrderStatusChanged>() {
            let changed = event.decode::<OrderStatusChanged>().map_err(HandlerError::Permanent)?;
            match changed.to.as_str() {
                "shipped" => self.change(tx, event, &changed.reservation_reference, Status::Committed, "shipped").await,
                "returned" => {
                    self.change(tx, event, &changed.reservation_reference, Status::Restocked, "returned").await
                }
                _ => Ok(()),
            }
        } else {
            Err(HandlerError::Permanent(format!("unexpected event type {}", event.event_type)))
        }
    }
}
