//! How the world reaches the ingest service: gRPC handlers, HTTP routes, bus consumers.
