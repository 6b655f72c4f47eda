//! The draft service's integration suite: one binary, real Postgres and NATS, with inventory,
//! order (and ingest) running in-process beside it.

mod approval;
mod batches;
mod crash;
mod health;
mod helpers;
mod messages;
