//! How the ingest service reaches the world: its Postgres repository, other services, third-party APIs.
