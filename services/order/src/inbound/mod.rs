//! How the world reaches the order service: the gRPC API and the inventory-event consumer.

pub mod grpc;
mod grpc_convert;
pub mod inventory_events;
pub mod tiktok_events;
