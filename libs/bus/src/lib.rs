//! The one way to talk to NATS JetStream.
//!
//! - [`subject`]: the versioned subject scheme and stream names, derived from a namespace.
//! - [`Envelope`]: the one event envelope, human-readable JSON.
//! - [`streams`]: streams declared in code and created idempotently at start-up.
//! - [`Bus`]: the connection; publishing waits for the PubAck and always sets `Nats-Msg-Id`.
//! - [`outbox`]: events written with the state change, relayed to JetStream in commit order.
//! - [`consumer`]: durable pull consumers with explicit ack, idempotent through the inbox table,
//!   bounded redelivery with backoff, then the dead-letter stream. Nothing is dropped silently.
//!   One event per transaction, or batches of them with each event's outcome its own.
//!
//! Architecture invariant: services never publish domain events directly; they enqueue them in
//! the outbox inside the transaction that makes the change.

mod config;
pub mod consumer;
mod envelope;
mod error;
pub mod outbox;
mod publisher;
pub mod streams;
pub mod subject;

pub use config::BusConfig;
pub use consumer::{BatchHandler, ConsumerSpec, Handler, HandlerError};
pub use envelope::{Envelope, Event};
pub use error::Error;
pub use publisher::{Bus, Outgoing, headers as header_names};
pub use subject::Namespace;

/// The bus's own tables (outbox, inbox), migrated into every service's schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
