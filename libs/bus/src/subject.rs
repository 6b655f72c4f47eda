//! The subject scheme, in one place.
//!
//! `{ns}.{domain}.v{version}.{event}.{tenant_id}` — e.g.
//! `orderflow.order.v1.status_changed.0b6f…` — so an operator can watch a domain
//! (`orderflow.order.>`), one event kind across tenants (`orderflow.order.v1.created.*`) or one
//! tenant (`orderflow.*.*.*.<tenant>`). A breaking change to an event's data bumps its version and
//! both versions are published while consumers move over.
//!
//! Each domain has one stream, `{NS}_{DOMAIN}` over `{ns}.{domain}.>`; dead letters go to
//! `{ns}.dlq.{consumer}` in the stream `{NS}_DLQ`.

use uuid::Uuid;

/// The prefix of every subject and stream name: `orderflow` in a deployment, unique per test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// Lowercase letters, digits and `_`; it becomes one subject token and part of stream names.
    pub fn new(value: &str) -> Result<Self, String> {
        let valid = !value.is_empty()
            && value.len() <= 32
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid { Ok(Self(value.to_string())) } else { Err(format!("namespace {value:?} must be 1-32 of [a-z0-9_]")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject of one event.
    pub fn event_subject(&self, domain: &str, version: u32, event: &str, tenant_id: Uuid) -> String {
        format!("{}.{domain}.v{version}.{event}.{tenant_id}", self.0)
    }

    /// Every subject of a domain (a stream's subject filter).
    pub fn domain_subjects(&self, domain: &str) -> String {
        format!("{}.{domain}.>", self.0)
    }

    /// Every tenant's events of one kind (a consumer's filter).
    pub fn event_filter(&self, domain: &str, version: u32, event: &str) -> String {
        format!("{}.{domain}.v{version}.{event}.*", self.0)
    }

    pub fn stream_name(&self, domain: &str) -> String {
        format!("{}_{}", self.0, domain).to_ascii_uppercase()
    }

    /// Where a consumer parks what it could not process.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        format!("{}.dlq.{consumer}", self.0)
    }

    pub fn dead_letter_stream(&self) -> String {
        self.stream_name("dlq")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_scheme() {
        let ns = Namespace::new("orderflow").expect("valid");
        let tenant = Uuid::nil();
        assert_eq!(
            ns.event_subject("order", 1, "created", tenant),
            "orderflow.order.v1.created.00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(ns.domain_subjects("order"), "orderflow.order.>");
        assert_eq!(ns.event_filter("ingest", 1, "message_received"), "orderflow.ingest.v1.message_received.*");
        assert_eq!(ns.stream_name("order"), "ORDERFLOW_ORDER");
        assert_eq!(ns.dead_letter_subject("draft"), "orderflow.dlq.draft");
    }

    #[test]
    fn namespaces_are_single_safe_tokens() {
        for bad in ["", "a.b", "A", "a b", "a>", &"x".repeat(33)] {
            assert!(Namespace::new(bad).is_err(), "{bad:?}");
        }
        assert!(Namespace::new("t_0a1b").is_ok());
    }
}
