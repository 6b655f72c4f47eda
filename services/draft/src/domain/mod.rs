//! The draft domain: plain Rust, no I/O.
