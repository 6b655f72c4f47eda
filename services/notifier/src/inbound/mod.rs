//! How the world reaches the notifier service: gRPC handlers, HTTP routes, bus consumers.
