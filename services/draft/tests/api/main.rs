//! The draft service's integration suite: one binary, real Postgres and NATS.

mod health;
