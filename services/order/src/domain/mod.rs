//! The order domain: plain Rust, no I/O.
