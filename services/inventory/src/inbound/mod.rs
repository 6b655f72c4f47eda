//! How the world reaches inventory: the gRPC API and the order-event consumer.

pub mod grpc;
pub(crate) mod grpc_convert;
pub mod order_events;
