//! How the draft service reaches the world: its Postgres schema, and the inventory and order
//! services over gRPC.

pub mod approvals;
pub mod batched_calls;
pub mod calls;
pub mod drafts;
pub mod inventory;
pub mod orders;
pub mod settings;

pub use db::DbError;
