//! How the ingest service reaches the world: its Postgres schema (channels, de-duplication,
//! archive, outbox) and the credential sealing key.

pub mod channels;
pub mod credentials;
pub mod tiktok_auth;
pub mod webhooks;
