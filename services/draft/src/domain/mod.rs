//! The draft domain: plain Rust, no I/O. The parser reads messages, the matcher maps their
//! words onto a catalog snapshot, and the draft holds items and totals a person reviews.

#[cfg(test)]
mod corpus_tests;
pub mod draft;
pub mod matcher;
pub mod parser;
