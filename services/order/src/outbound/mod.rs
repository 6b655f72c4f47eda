//! How the order service reaches the world: its Postgres schema and the outbox.

pub mod codes;
pub mod creation;
pub mod orders;
pub mod queries;
pub mod settings;
pub mod tiktok_api;
pub mod transitions;

pub use db::DbError;
