//! Postgres for one service: a pool bound to the service's own schema and role, its migrations,
//! the cluster bootstrap (roles, database, schemas), and the classification of database errors.
//!
//! Architecture invariant: a service connects as its own role, which can use only its own schema.
//! No service reads another's tables; they ask over gRPC or listen on the bus.

mod batch_connections;
pub mod bootstrap;
mod errors;
pub mod group_commit;
mod pool;

pub use batch_connections::{BatchConnection, BatchConnections};
pub use bootstrap::{SERVICES, ServiceDb};
pub use errors::{DbError, DbErrorKind, classify};
pub use group_commit::{BatchProcessor, GroupCommit, ShuttingDown};
pub use pool::{DbConfig, TRUSTED_IDLE, connect, connect_batches, migrate};
