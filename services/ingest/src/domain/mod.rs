//! The ingest domain: plain Rust, no I/O. Verify a webhook's signature over its raw bytes, parse
//! the platform's shape, and normalise it into canonical events, each with a de-duplication key.

pub mod instagram;
mod normalized;
pub mod signature;
pub mod tiktok;
pub mod whatsapp;

pub use normalized::{ChannelRef, IngestEvent, Normalized, ParseError, phone_e164};

#[cfg(test)]
mod tests;
