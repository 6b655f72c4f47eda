//! The notifier domain: plain Rust, no I/O.
