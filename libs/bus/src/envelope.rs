//! The one event envelope. JSON on the wire so `nats sub` and `nats stream view` show it as is.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Namespace;

/// A typed event: its data, and where it lives in the subject scheme.
pub trait Event: Serialize + DeserializeOwned {
    /// The publishing domain: `ingest`, `draft`, `order`, `inventory`, `shipping`, `notifier`.
    const DOMAIN: &'static str;
    /// The event name within the domain, e.g. `status_changed`.
    const NAME: &'static str;
    /// Bumped on a breaking change to the data.
    const VERSION: u32;
}

/// Every event on the bus, whatever its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    /// Unique per event; also the `Nats-Msg-Id` and the inbox key.
    pub id: Uuid,
    /// `{domain}.{name}`, e.g. `order.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub tenant_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The aggregate (draft, order, SKU…) the event is about; its events stay in commit order.
    pub aggregate_id: String,
    /// The event that caused this one, if any.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// Shared by every event of one flow (the first event's id).
    pub correlation_id: Uuid,
    /// W3C trace context (`traceparent`, `tracestate`) of the span that produced the event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trace: BTreeMap<String, String>,
    pub data: T,
}

impl<T: Event> Envelope<T> {
    /// A new event about `aggregate_id`; `cause` links it to the event that triggered it.
    pub fn new(tenant_id: Uuid, aggregate_id: impl Into<String>, data: T, cause: Option<&Envelope>) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            event_type: format!("{}.{}", T::DOMAIN, T::NAME),
            version: T::VERSION,
            tenant_id,
            occurred_at: OffsetDateTime::now_utc(),
            aggregate_id: aggregate_id.into(),
            causation_id: cause.map(|c| c.id),
            correlation_id: cause.map_or(id, |c| c.correlation_id),
            trace: telemetry::propagation::current_headers().into_iter().collect(),
            data,
        }
    }

    pub fn subject(&self, namespace: &Namespace) -> String {
        namespace.event_subject(T::DOMAIN, T::VERSION, T::NAME, self.tenant_id)
    }
}

impl<T: Serialize> Envelope<T> {
    /// The envelope with its data as plain JSON (what the outbox stores and consumers receive).
    pub fn into_untyped(self) -> Result<Envelope, serde_json::Error> {
        Ok(Envelope {
            id: self.id,
            event_type: self.event_type,
            version: self.version,
            tenant_id: self.tenant_id,
            occurred_at: self.occurred_at,
            aggregate_id: self.aggregate_id,
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            trace: self.trace,
            data: serde_json::to_value(self.data)?,
        })
    }
}

impl Envelope {
    /// The data as a typed event, checking that the type and version match.
    pub fn decode<T: Event>(&self) -> Result<T, String> {
        let expected = format!("{}.{}", T::DOMAIN, T::NAME);
        if self.event_type != expected || self.version != T::VERSION {
            return Err(format!("expected {expected} v{}, got {} v{}", T::VERSION, self.event_type, self.version));
        }
        serde_json::from_value(self.data.clone()).map_err(|err| format!("{expected} data: {err}"))
    }

    /// Whether this envelope carries events of type `T` (any version).
    pub fn is<T: Event>(&self) -> bool {
        self.event_type.split_once('.') == Some((T::DOMAIN, T::NAME))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pinged {
        count: u32,
    }
    impl Event for Pinged {
        const DOMAIN: &'static str = "test";
        const NAME: &'static str = "pinged";
        const VERSION: u32 = 1;
    }

    #[test]
    fn round_trips_as_readable_json() {
        let envelope = Envelope::new(Uuid::nil(), "agg-1", Pinged { count: 2 }, None).into_untyped().expect("json");
        let text = serde_json::to_string(&envelope).expect("json");
        assert!(text.contains(r#""type":"test.pinged""#), "{text}");
        assert!(text.contains(r#""data":{"count":2}"#), "{text}");
        let back: Envelope = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.decode::<Pinged>().expect("typed"), Pinged { count: 2 });
        assert_eq!(back.correlation_id, back.id);
    }

    #[test]
    fn causation_links_a_flow() {
        let first = Envelope::new(Uuid::nil(), "a", Pinged { count: 1 }, None).into_untyped().expect("json");
        let second = Envelope::new(Uuid::nil(), "a", Pinged { count: 2 }, Some(&first));
        assert_eq!(second.causation_id, Some(first.id));
        assert_eq!(second.correlation_id, first.correlation_id);
    }

    #[test]
    fn decode_refuses_another_type_or_version() {
        let mut envelope = Envelope::new(Uuid::nil(), "a", Pinged { count: 1 }, None).into_untyped().expect("json");
        envelope.version = 2;
        assert!(envelope.decode::<Pinged>().is_err());
    }
}
