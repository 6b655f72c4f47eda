//! The ingest domain: plain Rust, no I/O.
