//! The NATS connection and the one publish path.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;

use crate::{BusConfig, Error};

/// Header names orderflow sets on every message.
pub mod headers {
    /// JetStream's de-duplication key; always the envelope id.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The aggregate an event is about; consumers keep one aggregate's events on one lane.
    pub const PARTITION_KEY: &str = "Orderflow-Partition-Key";
    pub const DLQ_REASON: &str = "Orderflow-Dlq-Reason";
    pub const DLQ_CONSUMER: &str = "Orderflow-Dlq-Consumer";
    pub const DLQ_ORIGINAL_SUBJECT: &str = "Orderflow-Dlq-Original-Subject";
    pub const DLQ_ORIGINAL_SEQUENCE: &str = "Orderflow-Dlq-Original-Sequence";
    pub const DLQ_DELIVERIES: &str = "Orderflow-Dlq-Deliveries";
}

/// A connection to NATS with its JetStream context. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: BusConfig,
}

/// One message to publish; the id becomes `Nats-Msg-Id`.
pub struct Outgoing<'a> {
    pub subject: &'a str,
    pub message_id: &'a str,
    pub partition_key: &'a str,
    pub payload: Bytes,
    pub extra_headers: Vec<(String, String)>,
}

impl Bus {
    /// Connects, retrying in the background when NATS is not up yet: a service must start (and,
    /// for ingest, keep taking webhooks into its outbox) during a NATS outage.
    pub async fn connect(config: BusConfig, client_name: &str) -> Result<Self, Error> {
        let client = async_nats::ConnectOptions::new()
            .name(client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&config.url)
            .await
            .map_err(|err| Error::Unavailable(err.to_string()))?;
        let jetstream = jetstream::ContextBuilder::new().timeout(Duration::from_secs(5)).build(client.clone());
        Ok(Self { client, jetstream, config })
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Sends a batch in order and waits for every PubAck. Returns how many of the leading
    /// messages were acknowledged; on a failure the rest are to be sent again (de-duplicated by
    /// `Nats-Msg-Id` if they did arrive).
    pub async fn publish_batch(&self, batch: Vec<Outgoing<'_>>) -> (usize, Option<Error>) {
        let mut pending = Vec::with_capacity(batch.len());
        for message in batch {
            let mut headers = HeaderMap::new();
            headers.insert(headers::PARTITION_KEY, message.partition_key);
            for (name, value) in message.extra_headers {
                headers.insert(name.as_str(), value.as_str());
            }
            let publish =
                PublishMessage::build().payload(message.payload).headers(headers).message_id(message.message_id);
            match self.jetstream.send_publish(message.subject.to_string(), publish).await {
                Ok(ack) => pending.push(ack),
                Err(err) => {
                    let error = publish_error(err.kind(), err.to_string());
                    return (acknowledged(pending).await.0, Some(error));
                }
            }
        }
        acknowledged(pending).await
    }

    /// Publishes one message and waits for its PubAck.
    pub async fn publish(&self, message: Outgoing<'_>) -> Result<(), Error> {
        match self.publish_batch(vec![message]).await {
            (_, Some(err)) => Err(err),
            (_, None) => Ok(()),
        }
    }
}

async fn acknowledged(pending: Vec<jetstream::context::PublishAckFuture>) -> (usize, Option<Error>) {
    let mut count = 0;
    for ack in pending {
        match ack.await {
            Ok(_) => count += 1,
            Err(err) => return (count, Some(publish_error(err.kind(), err.to_string()))),
        }
    }
    (count, None)
}

fn publish_error(kind: PublishErrorKind, message: String) -> Error {
    match kind {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe | PublishErrorKind::MaxAckPending => {
            Error::Unavailable(message)
        }
        // No stream answers until the streams are declared again; retrying after that is right.
        PublishErrorKind::StreamNotFound => Error::NoStream(message),
        PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence
        | PublishErrorKind::MaxPayloadExceeded
        | PublishErrorKind::Other => Error::JetStream(message),
    }
}
