//! The inventory domain: plain Rust, no I/O.
