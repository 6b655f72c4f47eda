//! The order service's integration suite: one binary, real Postgres and NATS.

mod bulk_update;
mod create_many;
mod creation;
mod editing;
mod events_published;
mod group_commits;
mod health;
mod helpers;
mod history_audit;
mod lifecycle_table;
mod listing;
mod payment_timeout;
mod payments;
mod role_rules;
mod shortage_flags;
mod tenant_walls;
mod tiktok;
