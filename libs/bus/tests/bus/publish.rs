//! Publishing: the PubAck is awaited and `Nats-Msg-Id` de-duplicates a re-published id.

use bus::Outgoing;

use crate::Harness;

fn message<'a>(subject: &'a str, id: &'a str) -> Outgoing<'a> {
    Outgoing {
        subject,
        message_id: id,
        partition_key: "k",
        payload: bytes::Bytes::from_static(b"{}"),
        extra_headers: vec![],
    }
}

#[tokio::test]
async fn a_republished_message_id_is_stored_once() {
    let h = Harness::new().await;
    let subject = h.ns().event_subject("order", 1, "ticked", uuid::Uuid::nil());
    h.bus.publish(message(&subject, "same-id")).await.expect("first publish");
    h.bus.publish(message(&subject, "same-id")).await.expect("duplicate publish is acknowledged");
    h.bus.publish(message(&subject, "other-id")).await.expect("second message");
    assert_eq!(h.stream_messages("order").await, 2);
}

#[tokio::test]
async fn publishing_outside_any_stream_is_an_error_not_a_silent_drop() {
    let h = Harness::new().await;
    let err = h.bus.publish(message("nowhere.at.all", "x")).await.unwrap_err();
    assert!(matches!(err, bus::Error::NoStream(_) | bus::Error::Unavailable(_) | bus::Error::JetStream(_)), "{err}");
}
