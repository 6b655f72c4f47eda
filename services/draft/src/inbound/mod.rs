//! How the world reaches the draft service: the review API over gRPC, and the consumers of
//! ingest's messages and inventory's catalog changes.

pub mod catalog_events;
pub mod grpc;
mod grpc_convert;
pub mod messages;
