//! The ingest service's integration suite: one binary, real Postgres and NATS, real-format
//! payloads signed as the platforms sign them.

mod channels;
mod health;
mod helpers;
mod housekeeping;
mod kinds;
mod token_refresh;
mod webhooks;
