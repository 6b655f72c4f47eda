//! The shipping domain: plain Rust, no I/O.
