//! The event payloads on the bus: the contract between the service that publishes and the ones
//! that consume. One module per publishing domain; each type implements [`bus::Event`], which
//! fixes its subject (`{ns}.{domain}.v{version}.{name}.{tenant}`).
//!
//! API boundary: changing a field here changes a published contract. Adding an optional field is
//! compatible; anything else bumps the event's `VERSION`.

pub mod draft;
pub mod ingest;
pub mod inventory;
pub mod order;
