//! How inventory reaches the world: its Postgres schema (catalog, stock, ledger, reservations,
//! settings) and the outbox.

pub mod catalog;
pub mod settings;
pub mod stock;

pub use db::DbError;
