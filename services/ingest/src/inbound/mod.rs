//! How the world reaches the ingest service: the platforms' webhooks over HTTP, and the channel
//! registry over gRPC.

pub mod channels_grpc;
pub mod webhooks_http;
