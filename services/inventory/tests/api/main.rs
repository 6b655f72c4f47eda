//! The inventory service's integration suite: one binary, real Postgres and NATS.

mod bad_input;
mod catalog;
mod health;
mod helpers;
mod ledger;
mod lifecycle;
mod low_stock;
mod order_events;
mod reservations;
mod reserve_many;
mod roles;
mod search;
mod telemetry;
mod tenant_isolation;
