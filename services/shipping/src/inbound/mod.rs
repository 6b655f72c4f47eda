//! How the world reaches the shipping service: gRPC handlers, HTTP routes, bus consumers.
