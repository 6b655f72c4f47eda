//! The inventory domain: plain Rust, no I/O. Catalog rows validated at the edge, and the
//! allocation rules that make reservations all-or-nothing and never oversell.

pub mod catalog;
pub mod reservations;
