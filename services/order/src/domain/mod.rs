//! The order domain: plain Rust, no I/O. The lifecycle state machine, totals and payments.

pub mod lifecycle;
pub mod parties;
pub mod payments;
pub mod tiktok;
pub mod totals;
