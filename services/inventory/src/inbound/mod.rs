//! How the world reaches the inventory service: gRPC handlers, HTTP routes, bus consumers.
