//! How the world reaches the draft service: gRPC handlers, HTTP routes, bus consumers.
