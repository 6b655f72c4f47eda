//! How the world reaches the order service: gRPC handlers, HTTP routes, bus consumers.
