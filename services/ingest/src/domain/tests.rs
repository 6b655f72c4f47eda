//! Normalisation of real-format payloads (fixtures in tests/fixtures).
//!
//! Every fixture is shaped as the platform sends it: Meta's `\u` and `\/` escapes and unknown extra
//! fields, WhatsApp timestamps as strings, Instagram timestamps in milliseconds, TikTok ids as bare
//! JSON numbers above 2^53. Each test states what downstream consumers rely on: how many events,
//! their de-duplication keys, the channel, the customer, the time and the content.

use events::ingest::{
    CatalogItem, Customer, DeliveryStatus, EchoReceived, MessageContent, MessageReceived, MessageStatusUpdated,
    Platform, StatusError, TiktokNotificationKind, TiktokShopNotification,
};
use money::Money;
use time::macros::datetime;

use super::signature::{self, SignatureError};
use super::whatsapp::Skipped;
use super::{ChannelRef, IngestEvent, Normalized, ParseError, instagram, tiktok, whatsapp};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/", $name)).as_slice()
    };
}

const WA_PHONE_NUMBER_ID: &str = "106540352242922";
const WA_JP_PHONE_NUMBER_ID: &str = "109876543210987";
/// Messages orderflow sent (the targets of statuses, replies and reactions).
const WA_OUTBOUND_1: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QjVFMTRGRUM0MjM3QzA5QjkA";
const WA_OUTBOUND_2: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBNzQ0RDFCQjA3QjE4NjVDRDIA";
const IG_ACCOUNT: &str = "17841405822304914";
const IG_CUSTOMER: &str = "1254459154682919";
const TT_SHOP: &str = "7494049642642441621";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The events of a WhatsApp webhook that holds nothing but `messages` changes.
fn wa(body: &[u8]) -> Vec<Normalized> {
    let (events, skipped) = whatsapp::normalize(body).expect("a valid WhatsApp webhook");
    assert_eq!(skipped, Skipped::default(), "no other fields expected");
    events
}

fn ig(body: &[u8]) -> Vec<Normalized> {
    instagram::normalize(body).expect("a valid Instagram webhook")
}

fn only(events: Vec<Normalized>) -> Normalized {
    assert_eq!(events.len(), 1, "expected exactly one event: {events:#?}");
    events.into_iter().next().expect("one event")
}

fn message(event: &Normalized) -> &MessageReceived {
    match &event.event {
        IngestEvent::Message(received) => received,
        other => panic!("expected a customer message, got {other:#?}"),
    }
}

fn status(event: &Normalized) -> &MessageStatusUpdated {
    match &event.event {
        IngestEvent::Status(status) => status,
        other => panic!("expected a status, got {other:#?}"),
    }
}

fn echo(event: &Normalized) -> &EchoReceived {
    match &event.event {
        IngestEvent::Echo(echo) => echo,
        other => panic!("expected an echo, got {other:#?}"),
    }
}

fn notification(event: &Normalized) -> &TiktokShopNotification {
    match &event.event {
        IngestEvent::Tiktok(notification) => notification,
        other => panic!("expected a TikTok Shop notification, got {other:#?}"),
    }
}

/// The only event of a WhatsApp fixture, which must be a customer message: (dedupe key, message).
fn wa_only_message(body: &[u8]) -> (String, MessageReceived) {
    let event = only(wa(body));
    let received = message(&event).clone();
    (event.dedupe_key, received)
}

/// The only event of an Instagram fixture, which must be a customer message: (dedupe key, message).
fn ig_only_message(body: &[u8]) -> (String, MessageReceived) {
    let event = only(ig(body));
    let received = message(&event).clone();
    (event.dedupe_key, received)
}

fn keys(events: &[Normalized]) -> Vec<&str> {
    events.iter().map(|e| e.dedupe_key.as_str()).collect()
}

fn money(amount_minor: i64, currency: &str) -> Money {
    Money::new(amount_minor, currency.parse().expect("an ISO 4217 code"))
}

fn wa_channel(phone_number_id: &str) -> ChannelRef {
    ChannelRef { platform: Platform::Whatsapp, external_id: phone_number_id.into() }
}

fn ig_channel() -> ChannelRef {
    ChannelRef { platform: Platform::Instagram, external_id: IG_ACCOUNT.into() }
}

fn ig_customer() -> Customer {
    Customer { platform_id: IG_CUSTOMER.into(), name: None, phone_e164: None }
}

/// Instagram message ids share a long prefix; the fixtures differ only in the tail.
fn mid(tail: &str) -> String {
    format!(
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTY0MjQ1MjIzNDc0NTIyNjoz{tail}ZDZD"
    )
}

/// The business's own message, which customers reply to, react to and read.
fn ig_our_mid() -> String {
    mid("MTk0OTQ3OTI2NzY4OTM2NjQwNjgxNzI4MjU2MjAwNTM3N")
}

/// What a caller can tell apart about a parse error, as one comparable string.
fn error_kind(error: &ParseError) -> String {
    match error {
        ParseError::NotJson(_) => "not JSON".into(),
        ParseError::WrongShape { platform, .. } => format!("wrong shape ({platform})"),
        ParseError::BadField { field, .. } => format!("bad {field}"),
    }
}

/// The same JSON as Meta's bytes but re-serialised: escapes decoded, keys reordered, no spacing.
fn reserialise(body: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    serde_json::to_vec(&value).expect("serialisable")
}

/// A WhatsApp webhook around one `entry[0].changes[0].value`.
fn wa_body(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{value},"field":"messages"}}]}}]}}"#
    )
}

/// A WhatsApp webhook carrying one message (its JSON text).
fn wa_message_body(message: &str) -> String {
    wa_body(&format!(
        r#"{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{WA_PHONE_NUMBER_ID}"}},"messages":[{message}]}}"#
    ))
}

/// A WhatsApp catalog order with one product line; `quantity` and `price` are raw JSON tokens.
fn wa_order_body(quantity: &str, price: &str, currency: &str) -> String {
    wa_message_body(&format!(
        r#"{{"from":"16505551234","id":"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQwA=","timestamp":"1749420000","type":"order","order":{{"catalog_id":"1204975393921416","product_items":[{{"product_retailer_id":"SKU-1","quantity":{quantity},"item_price":{price},"currency":"{currency}"}}]}}}}"#
    ))
}

/// The one product line of a one-line order webhook.
fn only_item(body: &str) -> Result<CatalogItem, ParseError> {
    let (events, _) = whatsapp::normalize(body.as_bytes())?;
    match &message(&only(events)).content {
        MessageContent::CatalogOrder { items, .. } if items.len() == 1 => Ok(items[0].clone()),
        other => panic!("expected a one-line catalog order, got {other:#?}"),
    }
}

fn ig_body(messaging: &str) -> String {
    format!(
        r#"{{"object":"instagram","entry":[{{"time":1749416384012,"id":"{IG_ACCOUNT}","messaging":[{messaging}]}}]}}"#
    )
}

/// A TikTok Shop notification; `notification_id`, `shop_id` and `data` are raw JSON tokens.
fn tt_body(notification_id: &str, shop_id: &str, data: &str) -> String {
    format!(
        r#"{{"type":1,"tts_notification_id":{notification_id},"shop_id":{shop_id},"timestamp":1644412885,"data":{data}}}"#
    )
}

fn tt_order_body(order_id: &str) -> String {
    tt_body(
        r#""7327112393057371999""#,
        r#""7494049642642441621""#,
        &format!(
            r#"{{"order_id":{order_id},"order_status":"AWAITING_SHIPMENT","is_on_hold_order":false,"update_time":1644412880}}"#
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// WhatsApp
// ---------------------------------------------------------------------------------------------

#[test]
fn whatsapp_text_message() {
    let event = only(wa(fixture!("whatsapp_text.json")));
    let wamid = "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBMDJGQzE5NjQ4RjNEMDY4QjNEAA==";
    assert_eq!(event.dedupe_key, format!("wa:msg:{wamid}"));
    assert_eq!(event.channel, wa_channel(WA_PHONE_NUMBER_ID));
    assert_eq!(event.partition_key, "wa:106540352242922:4915112345678");
    assert_eq!(event.event.kind(), "message");

    let received = message(&event);
    assert_eq!(received.platform, Platform::Whatsapp);
    assert_eq!(received.channel_id, WA_PHONE_NUMBER_ID);
    assert_eq!(received.message_id, wamid);
    assert_eq!(
        received.customer,
        Customer {
            platform_id: "4915112345678".into(),
            name: Some("Jürgen Müller".into()),
            phone_e164: Some("+4915112345678".into()),
        }
    );
    assert_eq!(received.sent_at, datetime!(2025-06-08 20:59:43 UTC));
    // Meta's `\u00fc\u00df` and the surrogate pair `\ud83d\udc55` decode to the characters.
    assert_eq!(received.content, MessageContent::Text { body: "Grüße! Gibt es das Shirt auch in Blau? 👕".into() });
    assert_eq!(received.reply_to, None);
    let referral = received.referral.as_ref().expect("the click-to-WhatsApp ad referral is kept");
    assert_eq!(referral["source_type"], "ad");
    assert_eq!(referral["source_id"], "120208875326820178");
}

#[test]
fn whatsapp_catalog_order_keeps_every_line_with_exact_prices() {
    let (key, received) = wa_only_message(fixture!("whatsapp_order.json"));
    assert_eq!(key, "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwNkE4RjA5QkQ0NzVEMjlGQgA=");
    assert_eq!(
        received.customer,
        Customer {
            platform_id: "16505551234".into(),
            name: Some("Sheena Nelson".into()),
            phone_e164: Some("+16505551234".into()),
        }
    );
    assert_eq!(received.sent_at, datetime!(2025-06-08 22:00:00 UTC));
    let line = |sku: &str, quantity: i64, minor: i64, text: &str| CatalogItem {
        product_retailer_id: sku.into(),
        quantity,
        unit_price: Some(money(minor, "USD")),
        price_text: text.into(),
        currency: "USD".into(),
    };
    assert_eq!(
        received.content,
        MessageContent::CatalogOrder {
            catalog_id: Some("1204975393921416".into()),
            note: Some("Please gift wrap the mug – thanks!".into()),
            items: vec![
                line("TSHIRT-BLU-M", 2, 1299, "12.99"),
                line("MUG-CERAMIC-01", 1, 3000, "30"),
                line("STICKER-PACK-5", 3, 450, "4.5"),
            ],
        }
    );
}

#[test]
fn whatsapp_yen_order_has_no_minor_digits() {
    let (key, received) = wa_only_message(fixture!("whatsapp_order_jpy.json"));
    assert_eq!(key, "wa:msg:wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0FCN0UyMDk5QzRGNjFBMkQ1RTgA");
    assert_eq!(received.channel_id, WA_JP_PHONE_NUMBER_ID);
    assert_eq!(received.customer.name.as_deref(), Some("田中花子"));
    assert_eq!(received.customer.phone_e164.as_deref(), Some("+818012345678"));
    let MessageContent::CatalogOrder { items, note, .. } = &received.content else {
        panic!("expected a catalog order, got {:#?}", received.content);
    };
    assert_eq!(note.as_deref(), Some("よろしくお願いします"));
    assert_eq!(
        items,
        &vec![
            CatalogItem {
                product_retailer_id: "MATCHA-100G".into(),
                quantity: 2,
                unit_price: Some(money(1500, "JPY")),
                price_text: "1500".into(),
                currency: "JPY".into(),
            },
            CatalogItem {
                product_retailer_id: "CHASEN-80".into(),
                quantity: 1,
                unit_price: Some(money(3200, "JPY")),
                price_text: "3200".into(),
                currency: "JPY".into(),
            },
        ]
    );
}

#[test]
fn whatsapp_buttons_and_lists_become_interactive_replies() {
    // (fixture, message id, reply id, title, the message replied to)
    let table = [
        (
            fixture!("whatsapp_interactive_button.json"),
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTc3RjMzQkE5QzI0NUM2RjYwOQA=",
            "confirm_order_8841",
            "Confirm order",
            WA_OUTBOUND_1,
        ),
        (
            fixture!("whatsapp_interactive_list.json"),
            "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBNUQ0QjkxMDhFRkI4QjM4RjI3AA==",
            "size_m",
            "Größe M",
            WA_OUTBOUND_2,
        ),
        (
            fixture!("whatsapp_button.json"),
            "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUYyQjk3RTVEMDE5QzE4MzQ1RQA=",
            "TRACK_ORDER_8841",
            "Track my order",
            WA_OUTBOUND_1,
        ),
    ];
    for (body, wamid, reply_id, title, reply_to) in table {
        let (key, received) = wa_only_message(body);
        assert_eq!(key, format!("wa:msg:{wamid}"));
        assert_eq!(
            received.content,
            MessageContent::Interactive { reply_id: reply_id.into(), title: Some(title.into()) },
            "{wamid}"
        );
        assert_eq!(received.reply_to.as_deref(), Some(reply_to), "{wamid}");
    }
}

#[test]
fn whatsapp_media_keeps_id_mime_type_and_caption() {
    let events: Vec<Normalized> =
        [fixture!("whatsapp_image.json"), fixture!("whatsapp_document.json"), fixture!("whatsapp_media.json")]
            .into_iter()
            .flat_map(wa)
            .collect();
    let media = |kind: &str, id: &str, mime: &str, caption: Option<&str>| MessageContent::Media {
        media_kind: kind.into(),
        media_id: Some(id.into()),
        url: None,
        mime_type: Some(mime.into()),
        caption: caption.map(Into::into),
    };
    let expected = [
        media("image", "1003383421387256", "image/jpeg", Some("Dieses Muster, aber größer?")),
        media("document", "1250713456328914", "application/pdf", Some("Invoice for order #8841")),
        media("sticker", "835416958493118", "image/webp", None),
        media("audio", "1528743247957380", "audio/ogg; codecs=opus", None),
        media("video", "2096513207505232", "video/mp4", Some("So sieht es bei mir aus ☹")),
    ];
    assert_eq!(events.len(), expected.len());
    for (event, expected) in events.iter().zip(expected) {
        assert!(event.dedupe_key.starts_with("wa:msg:wamid."), "{}", event.dedupe_key);
        assert_eq!(message(event).content, expected);
    }
}

#[test]
fn whatsapp_location_reaction_and_contacts() {
    let (_, location) = wa_only_message(fixture!("whatsapp_location.json"));
    assert_eq!(
        location.content,
        MessageContent::Location {
            latitude: 48.137154,
            longitude: 11.576124,
            name: Some("Marienplatz".into()),
            address: Some("Marienplatz 1, 80331 München".into()),
        }
    );
    assert_eq!(location.sent_at, datetime!(2025-06-08 22:08:40 UTC));

    // A reaction, then its removal (no emoji): two messages, neither dropped.
    let reactions = wa(fixture!("whatsapp_reaction.json"));
    assert_eq!(
        keys(&reactions),
        [
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUQ0RDREMUUyRTNFNEU1RTZFNwA=",
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUU1RTVFMkYzRjRGNUY2RjdGOAA=",
        ]
    );
    assert_eq!(
        message(&reactions[0]).content,
        MessageContent::Reaction { target_message_id: WA_OUTBOUND_1.into(), emoji: Some("👍".into()) }
    );
    assert_eq!(
        message(&reactions[1]).content,
        MessageContent::Reaction { target_message_id: WA_OUTBOUND_1.into(), emoji: None }
    );

    let (_, contacts) = wa_only_message(fixture!("whatsapp_contacts.json"));
    let MessageContent::Contacts { contacts } = &contacts.content else {
        panic!("expected shared contacts, got {:#?}", contacts.content);
    };
    assert_eq!(contacts[0]["name"]["formatted_name"], "Anna Schröder");
    assert_eq!(contacts[0]["phones"][0]["wa_id"], "4915123456789");
}

#[test]
fn whatsapp_types_orderflow_does_not_know_are_published_as_unsupported() {
    let events = wa(fixture!("whatsapp_unknown_type.json"));
    assert_eq!(
        keys(&events),
        [
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTg4OEE4ODhCODg4Qzg4OEQ4OAA=",
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTk5OUE5OTlCOTk5Qzk5OUQ5OQA=",
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUFBQUFBQUJBQUFBQ0FBQUREQQA=",
        ]
    );
    let unsupported: Vec<(&str, &serde_json::Value)> = events
        .iter()
        .map(|event| match &message(event).content {
            MessageContent::Unsupported { raw_type, raw } => (raw_type.as_str(), raw),
            other => panic!("expected unsupported, got {other:#?}"),
        })
        .collect();
    // `unsupported` with Meta's error, a type that does not exist yet, and a Flow reply.
    assert_eq!(unsupported.iter().map(|(t, _)| *t).collect::<Vec<_>>(), ["unsupported", "ephemeral", "interactive"]);
    let (_, raw) = unsupported[0];
    assert_eq!(raw["errors"][0]["code"], 131051);
    assert_eq!(raw["errors"][0]["error_data"]["details"], "Message type is currently not supported.");
    assert_eq!(raw["unsupported"]["type"], "edit");
    assert_eq!(unsupported[1].1["ephemeral"]["ttl_seconds"], 86400);
    assert_eq!(unsupported[2].1["interactive"]["type"], "nfm_reply");
    // The customer is still known, so someone can answer.
    for event in &events {
        assert_eq!(message(event).customer.phone_e164.as_deref(), Some("+16505551234"));
    }
}

#[test]
fn whatsapp_statuses_become_status_events_with_errors() {
    let events = wa(fixture!("whatsapp_statuses.json"));
    assert_eq!(
        keys(&events),
        [
            format!("wa:status:{WA_OUTBOUND_1}:sent"),
            format!("wa:status:{WA_OUTBOUND_1}:delivered"),
            format!("wa:status:{WA_OUTBOUND_1}:read"),
            format!("wa:status:{WA_OUTBOUND_2}:failed"),
        ]
    );
    let expected = |wamid: &str, status, raw: &str, at, errors| MessageStatusUpdated {
        platform: Platform::Whatsapp,
        channel_id: WA_PHONE_NUMBER_ID.into(),
        message_id: wamid.into(),
        status,
        raw_status: raw.into(),
        recipient_id: Some("16505551234".into()),
        at,
        errors,
    };
    let failure = StatusError {
        code: 131047,
        title: Some("Re-engagement message".into()),
        message: Some("Re-engagement message".into()),
        details: Some(
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                .into(),
        ),
    };
    let table = [
        expected(WA_OUTBOUND_1, DeliveryStatus::Sent, "sent", datetime!(2025-06-08 22:03:20 UTC), vec![]),
        expected(WA_OUTBOUND_1, DeliveryStatus::Delivered, "delivered", datetime!(2025-06-08 22:03:21 UTC), vec![]),
        expected(WA_OUTBOUND_1, DeliveryStatus::Read, "read", datetime!(2025-06-08 22:04:20 UTC), vec![]),
        expected(WA_OUTBOUND_2, DeliveryStatus::Failed, "failed", datetime!(2025-06-08 22:05:00 UTC), vec![failure]),
    ];
    for (event, expected) in events.iter().zip(table) {
        assert_eq!(event.event.kind(), "status");
        assert_eq!(event.channel, wa_channel(WA_PHONE_NUMBER_ID));
        assert_eq!(event.partition_key, format!("wa:out:{}", expected.message_id));
        assert_eq!(status(event), &expected);
    }
}

#[test]
fn whatsapp_batch_yields_one_event_per_message_and_status_in_order() {
    let (events, skipped) = whatsapp::normalize(fixture!("whatsapp_batched.json")).expect("a valid webhook");
    assert_eq!(skipped, Skipped { other_fields: vec!["message_template_status_update".into()] });
    assert_eq!(
        keys(&events),
        [
            "wa:msg:wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQjAxQjAxQjAxQjAxQjAxQjAxQgA=".to_string(),
            "wa:msg:wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNCMDJCMDJCMDJCMDJCMDJCMDJCAA==".into(),
            format!("wa:status:{WA_OUTBOUND_1}:delivered"),
            format!("wa:status:{WA_OUTBOUND_2}:read"),
            "wa:msg:wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0IwM0IwM0IwM0IwM0IwM0IwM0IA".into(),
            "wa:msg:wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0IwNEIwNEIwNEIwNEIwNEIwNEIA".into(),
        ]
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["message", "message", "status", "status", "message", "message"]);
    let channels: Vec<&str> = events.iter().map(|e| e.channel.external_id.as_str()).collect();
    assert_eq!(
        channels,
        [
            WA_PHONE_NUMBER_ID,
            WA_PHONE_NUMBER_ID,
            WA_PHONE_NUMBER_ID,
            WA_PHONE_NUMBER_ID,
            WA_JP_PHONE_NUMBER_ID,
            WA_JP_PHONE_NUMBER_ID
        ]
    );
    // Each message finds its own sender among the change's contacts.
    let names: Vec<Option<&str>> = [0, 1, 4, 5].iter().map(|&i| message(&events[i]).customer.name.as_deref()).collect();
    assert_eq!(names, [Some("Sheena Nelson"), Some("Jürgen Müller"), Some("田中花子"), Some("田中花子")]);
    assert_eq!(message(&events[1]).content, MessageContent::Text { body: "Schönen Tag noch!".into() });
    assert_eq!(message(&events[4]).content, MessageContent::Text { body: "ありがとうございます".into() });
    assert_eq!(message(&events[4]).sent_at, datetime!(2025-06-15 16:00:04 UTC));
    assert_eq!(status(&events[3]).recipient_id.as_deref(), Some("4915112345678"));
    assert_eq!(
        message(&events[5]).content,
        MessageContent::Reaction {
            target_message_id: "wamid.HBgMODE4MDEyMzQ1Njc4FQIAERgSQkU1RjA0QjM2MDk4NEQ1QjMA".into(),
            emoji: Some("🙏".into()),
        }
    );
}

#[test]
fn whatsapp_prices_convert_exactly_or_not_at_all() {
    // (item_price as sent, currency, unit price in minor units)
    let table = [
        ("12.99", "USD", Some(1299)),
        ("30", "USD", Some(3000)),
        ("0.5", "EUR", Some(50)),
        ("1500", "JPY", Some(1500)),
        ("1.234", "KWD", Some(1234)),
        // More decimals than the currency has: no price, but the text is kept for people to see.
        ("30.999", "USD", None),
        ("1500.5", "JPY", None),
        // Not an ISO 4217 code.
        ("12.99", "US", None),
    ];
    for (price, currency, minor) in table {
        let item = only_item(&wa_order_body("1", price, currency)).expect(price);
        assert_eq!(item.unit_price, minor.map(|m| money(m, currency)), "{price} {currency}");
        assert_eq!(item.price_text, price, "{price} {currency}");
        assert_eq!(item.currency, currency);
    }
}

#[test]
fn whatsapp_prices_are_read_as_their_literal_text() {
    let item = only_item(&wa_order_body("1", "12.50", "USD")).expect("12.50");
    assert_eq!(item.price_text, "12.50");
    assert_eq!(item.unit_price, Some(money(1250, "USD")));

    let item = only_item(&wa_order_body("1", "30.0000000000000001", "USD")).expect("over-precise");
    assert_eq!(item.price_text, "30.0000000000000001");
    assert_eq!(item.unit_price, None, "not a whole number of cents");

    let item = only_item(&wa_order_body("1", "12345678901234567.89", "USD")).expect("large");
    assert_eq!(item.unit_price, Some(money(1_234_567_890_123_456_789, "USD")));
}

#[test]
fn whatsapp_quantities_must_be_positive_whole_numbers() {
    for quantity in ["0", "-1", "1.5", "2.0", "1e2", r#""two""#, "null", "99999999999999999999"] {
        let error = only_item(&wa_order_body(quantity, "12.99", "USD")).expect_err(quantity);
        assert_eq!(error_kind(&error), "bad product_items[].quantity", "{quantity}");
    }
}

#[test]
fn whatsapp_bodies_that_are_not_the_platform_shape_are_refused() {
    let message = |fields: &str| wa_message_body(&format!(r#"{{"from":"16505551234",{fields}}}"#));
    let table = [
        ("an HTML error page", "<html>502 Bad Gateway</html>".to_string(), "not JSON"),
        ("a truncated body", r#"{"object":"whatsapp_business_account","entry":[{"#.into(), "not JSON"),
        ("an Instagram webhook", r#"{"object":"instagram","entry":[]}"#.into(), "wrong shape (whatsapp)"),
        ("a Page webhook", r#"{"object":"page","entry":[]}"#.into(), "wrong shape (whatsapp)"),
        (
            "a message without id",
            message(r#""timestamp":"1749416383","type":"text","text":{"body":"hi"}"#),
            "bad messages[]",
        ),
        (
            "an ISO timestamp",
            message(r#""id":"wamid.A","timestamp":"2025-06-08T20:59:43Z","type":"text","text":{"body":"hi"}"#),
            "bad messages[].timestamp",
        ),
        (
            "an empty timestamp",
            message(r#""id":"wamid.A","timestamp":"","type":"text","text":{"body":"hi"}"#),
            "bad messages[].timestamp",
        ),
        (
            "a numeric timestamp",
            message(r#""id":"wamid.A","timestamp":1749416383,"type":"text","text":{"body":"hi"}"#),
            "bad messages[]",
        ),
        (
            "a text message without text",
            message(r#""id":"wamid.A","timestamp":"1749416383","type":"text""#),
            "bad messages[].text",
        ),
        (
            "an order message without order",
            message(r#""id":"wamid.A","timestamp":"1749416383","type":"order""#),
            "bad messages[].order",
        ),
        ("a value without metadata", wa_body(r#"{"messaging_product":"whatsapp","messages":[]}"#), "bad value"),
        (
            "a status with a bad timestamp",
            wa_body(&format!(
                r#"{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"{WA_PHONE_NUMBER_ID}"}},"statuses":[{{"id":"{WA_OUTBOUND_1}","status":"read","timestamp":"later","recipient_id":"16505551234"}}]}}"#
            )),
            "bad statuses[].timestamp",
        ),
    ];
    for (what, body, expected) in table {
        let error = whatsapp::normalize(body.as_bytes()).expect_err(what);
        assert_eq!(error_kind(&error), expected, "{what}: {error}");
    }
}

#[test]
fn whatsapp_status_kinds_meta_may_add_are_kept_as_other() {
    let body = wa_body(&format!(
        r#"{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"{WA_PHONE_NUMBER_ID}"}},"statuses":[{{"id":"{WA_OUTBOUND_1}","status":"deleted","timestamp":"1749420300","recipient_id":"16505551234"}}]}}"#
    ));
    let event = only(wa(body.as_bytes()));
    assert_eq!(event.dedupe_key, format!("wa:status:{WA_OUTBOUND_1}:deleted"));
    assert_eq!(status(&event).status, DeliveryStatus::Other);
    assert_eq!(status(&event).raw_status, "deleted");
}

#[test]
fn whatsapp_user_known_only_by_business_scoped_id_still_yields_a_message() {
    let (key, received) = wa_only_message(fixture!("whatsapp_bsuid_no_phone.json"));
    assert_eq!(key, "wa:msg:wamid.HBgTREUuMTQxMDAxODcxNzgzMzE5MBUCABIYFDNBQkJDQ0RERUVGRjAwMTEyMjMzAA==");
    assert_eq!(
        received.customer,
        Customer { platform_id: "DE.1410018717833190".into(), name: Some("Lena".into()), phone_e164: None }
    );
    assert_eq!(received.content, MessageContent::Text { body: "Hallo, ist der Laden heute offen?".into() });
}

// ---------------------------------------------------------------------------------------------
// Instagram
// ---------------------------------------------------------------------------------------------

#[test]
fn instagram_text_messages_and_a_reply() {
    let events = ig(fixture!("instagram_text.json"));
    let first = mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ0M");
    let second = mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ0N");
    assert_eq!(keys(&events), [format!("ig:msg:{first}"), format!("ig:msg:{second}")]);
    for event in &events {
        assert_eq!(event.channel, ig_channel());
        assert_eq!(event.partition_key, format!("ig:{IG_ACCOUNT}:{IG_CUSTOMER}"));
        assert_eq!(message(event).customer, ig_customer());
        assert_eq!(message(event).platform, Platform::Instagram);
        assert_eq!(message(event).channel_id, IG_ACCOUNT);
    }

    let hello = message(&events[0]);
    assert_eq!(hello.message_id, first);
    assert_eq!(hello.content, MessageContent::Text { body: "Grüße aus München 👋".into() });
    // Milliseconds, not seconds: 1749416383123 ms.
    assert_eq!(hello.sent_at, datetime!(2025-06-08 20:59:43.123 UTC));
    assert_eq!(hello.sent_at.unix_timestamp(), 1_749_416_383);
    assert_eq!(hello.reply_to, None);

    let reply = message(&events[1]);
    assert_eq!(reply.content, MessageContent::Text { body: "Und in Größe L?".into() });
    assert_eq!(reply.sent_at, datetime!(2025-06-08 20:59:50.999 UTC));
    assert_eq!(reply.reply_to, Some(ig_our_mid()));
}

#[test]
fn instagram_attachment_story_reply_and_quick_reply() {
    let (key, attachment) = ig_only_message(fixture!("instagram_attachment.json"));
    assert_eq!(key, format!("ig:msg:{}", mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ1M")));
    assert_eq!(
        attachment.content,
        MessageContent::Media {
            media_kind: "image".into(),
            media_id: None,
            // Meta's `https:\/\/` escapes are decoded.
            url: Some(
                "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17987745012345678&signature=AbyQ3xPm8sLg"
                    .into()
            ),
            mime_type: None,
            caption: None,
        }
    );
    assert_eq!(attachment.sent_at, datetime!(2025-06-08 21:00:00.5 UTC));

    let (key, story) = ig_only_message(fixture!("instagram_story_reply.json"));
    assert_eq!(key, format!("ig:msg:{}", mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ2M")));
    assert_eq!(
        story.content,
        MessageContent::StoryReply {
            story_id: Some("17920465738122812".into()),
            story_url: Some(
                "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17920465738122812&signature=AbzR4yQn9tMh"
                    .into()
            ),
            text: Some("Süß! Wie viel kostet die Tasche?".into()),
        }
    );
    assert_eq!(story.reply_to, None, "a story is not a message");

    let (key, quick_reply) = ig_only_message(fixture!("instagram_quick_reply.json"));
    assert_eq!(key, format!("ig:msg:{}", mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ4M")));
    assert_eq!(
        quick_reply.content,
        MessageContent::Interactive { reply_id: "SIZE_M".into(), title: Some("Größe M".into()) }
    );
    assert_eq!(quick_reply.sent_at, datetime!(2025-06-08 21:01:10.999 UTC));
}

#[test]
fn instagram_postback_is_an_interactive_reply() {
    let postback_mid = mid("MjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MTQ3M");
    let (key, received) = ig_only_message(fixture!("instagram_postback.json"));
    assert_eq!(key, format!("ig:postback:{postback_mid}"));
    assert_eq!(received.message_id, postback_mid);
    assert_eq!(received.customer, ig_customer());
    assert_eq!(
        received.content,
        MessageContent::Interactive { reply_id: "TRACK_ORDER_8841".into(), title: Some("Bestellung verfolgen".into()) }
    );
    assert_eq!(received.sent_at, datetime!(2025-06-08 21:01:00.4 UTC));
}

#[test]
fn instagram_echo_is_recognised_and_never_a_customer_message() {
    let event = only(ig(fixture!("instagram_echo.json")));
    assert_eq!(event.dedupe_key, format!("ig:echo:{}", ig_our_mid()));
    assert_eq!(event.event.kind(), "echo");
    assert!(!matches!(event.event, IngestEvent::Message(_)));
    assert_eq!(event.channel, ig_channel());
    // The conversation is the customer's, even though the business sent this.
    assert_eq!(event.partition_key, format!("ig:{IG_ACCOUNT}:{IG_CUSTOMER}"));
    assert_eq!(
        echo(&event),
        &EchoReceived {
            platform: Platform::Instagram,
            channel_id: IG_ACCOUNT.into(),
            message_id: ig_our_mid(),
            recipient_id: IG_CUSTOMER.into(),
            sent_at: datetime!(2025-06-08 21:00:20.75 UTC),
            text: Some("Danke für deine Bestellung!".into()),
        }
    );
}

#[test]
fn instagram_message_from_the_account_itself_is_an_echo_even_without_is_echo() {
    let body = ig_body(&format!(
        r#"{{"sender":{{"id":"{IG_ACCOUNT}"}},"recipient":{{"id":"{IG_CUSTOMER}"}},"timestamp":1749416420750,"message":{{"mid":"m_sent_from_the_app","text":"Bis morgen!"}}}}"#
    ));
    let event = only(ig(body.as_bytes()));
    assert_eq!(event.dedupe_key, "ig:echo:m_sent_from_the_app");
    assert_eq!(echo(&event).recipient_id, IG_CUSTOMER);
}

#[test]
fn instagram_reaction_and_its_removal() {
    let events = ig(fixture!("instagram_reaction.json"));
    let our_mid = ig_our_mid();
    assert_eq!(
        keys(&events),
        [format!("ig:reaction-{our_mid}-react-1749416430001"), format!("ig:reaction-{our_mid}-unreact-1749416440002")]
    );
    assert_eq!(
        message(&events[0]).content,
        MessageContent::Reaction { target_message_id: our_mid.clone(), emoji: Some("❤️".into()) }
    );
    assert_eq!(message(&events[0]).sent_at, datetime!(2025-06-08 21:00:30.001 UTC));
    assert_eq!(message(&events[1]).content, MessageContent::Reaction { target_message_id: our_mid, emoji: None });
    assert_eq!(message(&events[1]).customer, ig_customer());
}

#[test]
fn instagram_read_is_a_status_of_our_message() {
    let event = only(ig(fixture!("instagram_read.json")));
    assert_eq!(event.dedupe_key, format!("ig:read:{}", ig_our_mid()));
    assert_eq!(event.channel, ig_channel());
    assert_eq!(
        status(&event),
        &MessageStatusUpdated {
            platform: Platform::Instagram,
            channel_id: IG_ACCOUNT.into(),
            message_id: ig_our_mid(),
            status: DeliveryStatus::Read,
            raw_status: "read".into(),
            recipient_id: Some(IG_CUSTOMER.into()),
            at: datetime!(2025-06-08 21:00:50.3 UTC),
            errors: vec![],
        }
    );
}

#[test]
fn instagram_deleted_and_unknown_items() {
    // A deleted message gets its own key, so it never collides with the message it deletes.
    let deleted = ig_body(&format!(
        r#"{{"sender":{{"id":"{IG_CUSTOMER}"}},"recipient":{{"id":"{IG_ACCOUNT}"}},"timestamp":1749416500000,"message":{{"mid":"m_gone","is_deleted":true}}}}"#
    ));
    let event = only(ig(deleted.as_bytes()));
    assert_eq!(event.dedupe_key, "ig:deleted:m_gone");
    assert!(
        matches!(&message(&event).content, MessageContent::Unsupported { raw_type, .. } if raw_type == "message_deleted")
    );

    // A messaging item of a kind nobody knows yet is skipped, not refused.
    let unknown = ig_body(&format!(
        r#"{{"sender":{{"id":"{IG_CUSTOMER}"}},"recipient":{{"id":"{IG_ACCOUNT}"}},"timestamp":1749416500000,"message_edit":{{"mid":"m_x","text":"edited","num_edit":1}}}}"#
    ));
    assert_eq!(ig(unknown.as_bytes()), vec![]);
}

#[test]
fn instagram_bodies_that_are_not_the_platform_shape_are_refused() {
    let table = [
        ("not JSON", "ok".to_string(), "not JSON"),
        ("a Page webhook", r#"{"object":"page","entry":[]}"#.into(), "wrong shape (instagram)"),
        (
            "a WhatsApp webhook",
            r#"{"object":"whatsapp_business_account","entry":[]}"#.into(),
            "wrong shape (instagram)",
        ),
    ];
    for (what, body, expected) in table {
        let error = instagram::normalize(body.as_bytes()).expect_err(what);
        assert_eq!(error_kind(&error), expected, "{what}: {error}");
    }
}

// ---------------------------------------------------------------------------------------------
// TikTok Shop
// ---------------------------------------------------------------------------------------------

#[test]
fn tiktok_notifications_keep_big_ids_exact() {
    // The number-id fixture would lose its ids through an f64.
    assert_ne!((576_486_316_948_490_001_u64 as f64) as u64, 576_486_316_948_490_001);
    assert_ne!((7_494_049_642_642_441_621_u64 as f64) as u64, 7_494_049_642_642_441_621);

    // (fixture, notification id, type, kind, order id, status, update time)
    let table = [
        (
            fixture!("tiktok_order_status_number_ids.json"),
            "7327112393057371910",
            1,
            TiktokNotificationKind::OrderStatusChange,
            Some("576486316948490001"),
            Some("AWAITING_SHIPMENT"),
            Some(1_644_412_880),
        ),
        (
            fixture!("tiktok_order_status_string_ids.json"),
            "7327112393057371911",
            1,
            TiktokNotificationKind::OrderStatusChange,
            Some("576486316948490002"),
            Some("UNPAID"),
            Some(1_644_412_845),
        ),
        (
            fixture!("tiktok_cancellation.json"),
            "7327112393057371912",
            11,
            TiktokNotificationKind::CancellationStatusChange,
            Some("576486316948490001"),
            Some("CANCELLATION_REQUEST_PENDING"),
            // TikTok's cancellation sample carries only `create_time`, which orders it instead.
            Some(1627587600),
        ),
        (
            fixture!("tiktok_return.json"),
            "7327112393057371913",
            12,
            TiktokNotificationKind::ReturnStatusChange,
            Some("576486316948490001"),
            Some("RETURN_OR_REFUND_REQUEST_PENDING"),
            Some(1_644_412_880),
        ),
        (
            fixture!("tiktok_package.json"),
            "7327112393057371914",
            4,
            TiktokNotificationKind::PackageUpdate,
            // Package updates list their orders in `package_list[].order_id_list`.
            None,
            None,
            Some(1_644_412_880),
        ),
    ];
    for (body, notification_id, notification_type, kind, order_id, order_status, update_time) in table {
        let event = tiktok::normalize(body).expect(notification_id);
        assert_eq!(event.dedupe_key, format!("tt:{notification_id}"));
        assert_eq!(event.channel, ChannelRef { platform: Platform::TiktokShop, external_id: TT_SHOP.into() });
        assert_eq!(event.event.kind(), "tiktok_shop");
        let expected_partition = match order_id {
            Some(order_id) => format!("tt:{TT_SHOP}:{order_id}"),
            None => format!("tt:{TT_SHOP}"),
        };
        assert_eq!(event.partition_key, expected_partition);

        let got = notification(&event);
        assert_eq!(got.shop_id, TT_SHOP, "{notification_id}");
        assert_eq!(got.notification_id, notification_id);
        assert_eq!(got.notification_type, notification_type, "{notification_id}");
        assert_eq!(got.kind, kind, "{notification_id}");
        assert_eq!(got.order_id.as_deref(), order_id, "{notification_id}");
        assert_eq!(got.status.as_deref(), order_status, "{notification_id}");
        assert_eq!(got.update_time, update_time, "{notification_id}");
        assert_eq!(got.sent_at, datetime!(2022-02-09 13:21:25 UTC));
        // `data` is kept as sent: parseable, with every digit.
        let raw: serde_json::Value = serde_json::from_str(&got.raw_data).expect("raw_data is JSON");
        assert!(raw.is_object());
    }

    let numbers = tiktok::normalize(fixture!("tiktok_order_status_number_ids.json")).expect("valid");
    assert!(notification(&numbers).raw_data.contains(r#""order_id": 576486316948490001,"#));
    let package = tiktok::normalize(fixture!("tiktok_package.json")).expect("valid");
    assert!(notification(&package).raw_data.contains("1153132168123859123"));
}

#[test]
fn tiktok_ids_that_are_not_whole_decimal_numbers_are_refused() {
    let order_ids =
        ["1.5e18", "5.764863169484900e17", "576486316948490001.0", r#""abc""#, r#""""#, "-576486316948490001", "true"];
    for order_id in order_ids {
        let error = tiktok::normalize(tt_order_body(order_id).as_bytes()).expect_err(order_id);
        assert_eq!(error_kind(&error), "bad data.order_id", "{order_id}");
    }
    let data = r#"{"order_id":"576486316948490001","order_status":"UNPAID","update_time":1644412880}"#;
    let table = [
        (r#""abc""#, r#""7494049642642441621""#, data, "bad tts_notification_id"),
        ("1.5", r#""7494049642642441621""#, data, "bad tts_notification_id"),
        (r#""7327112393057371999""#, r#""shop-1""#, data, "bad shop_id"),
        (r#""7327112393057371999""#, "7.494049642642441e18", data, "bad shop_id"),
        (r#""7327112393057371999""#, r#""7494049642642441621""#, r#""not an object""#, "wrong shape (tiktok_shop)"),
        (r#""7327112393057371999""#, r#""7494049642642441621""#, "[1,2]", "wrong shape (tiktok_shop)"),
    ];
    for (notification_id, shop_id, data, expected) in table {
        let body = tt_body(notification_id, shop_id, data);
        let error = tiktok::normalize(body.as_bytes()).expect_err(&body);
        assert_eq!(error_kind(&error), expected, "{body}");
    }
    let error = tiktok::normalize(b"type=1&shop_id=7494049642642441621").expect_err("form body");
    assert_eq!(error_kind(&error), "not JSON");

    // An order id that is absent or null is no order id, not an error.
    let event = tiktok::normalize(tt_order_body("null").as_bytes()).expect("null order id");
    assert_eq!(notification(&event).order_id, None);
}

// ---------------------------------------------------------------------------------------------
// Across platforms
// ---------------------------------------------------------------------------------------------

#[test]
fn a_redelivered_payload_normalises_to_the_same_keys_and_event_ids() {
    // Meta delivers at least once; a copy re-serialised elsewhere (escapes decoded, keys reordered)
    // must still be recognised as the same events.
    let whatsapp_fixtures = [
        fixture!("whatsapp_text.json"),
        fixture!("whatsapp_order.json"),
        fixture!("whatsapp_statuses.json"),
        fixture!("whatsapp_batched.json"),
    ];
    for body in whatsapp_fixtures {
        let again = reserialise(body);
        assert_ne!(again, body);
        let (first, _) = whatsapp::normalize(body).expect("valid");
        let (second, _) = whatsapp::normalize(&again).expect("still valid");
        assert_eq!(first, second);
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a.event_id(), b.event_id(), "{}", a.dedupe_key);
        }
    }
    for body in [fixture!("instagram_text.json"), fixture!("instagram_echo.json"), fixture!("instagram_reaction.json")]
    {
        let first = ig(body);
        let second = ig(&reserialise(body));
        assert_eq!(first, second);
        assert_eq!(
            first.iter().map(Normalized::event_id).collect::<Vec<_>>(),
            second.iter().map(Normalized::event_id).collect::<Vec<_>>()
        );
    }
    // TikTok: a compacted copy of the bare-number fixture (a float round trip would corrupt it).
    let body = fixture!("tiktok_order_status_number_ids.json");
    let compact: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let first = tiktok::normalize(body).expect("valid");
    let second = tiktok::normalize(&compact).expect("still valid");
    assert_eq!(first.dedupe_key, second.dedupe_key);
    assert_eq!(first.event_id(), second.event_id());
    assert_eq!(notification(&first).order_id, notification(&second).order_id);

    // Different events never share an id.
    let statuses = wa(fixture!("whatsapp_statuses.json"));
    let mut ids: Vec<_> = statuses.iter().map(Normalized::event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), statuses.len());
}

#[test]
fn signatures_cover_the_bytes_as_sent_not_a_reserialisation() {
    let body = fixture!("whatsapp_text.json");
    let header = signature::sign_meta(b"meta-app-secret", body);
    assert_eq!(signature::verify_meta(b"meta-app-secret", Some(&header), body), Ok(()));
    assert_eq!(
        signature::verify_meta(b"meta-app-secret", Some(&header), &reserialise(body)),
        Err(SignatureError::Mismatch)
    );

    let body = fixture!("tiktok_order_status_number_ids.json");
    let header = signature::sign_tiktok("6abc1def2ghi", b"tiktok-app-secret", body);
    assert_eq!(signature::verify_tiktok("6abc1def2ghi", b"tiktok-app-secret", Some(&header), body), Ok(()));
    let compact: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(
        signature::verify_tiktok("6abc1def2ghi", b"tiktok-app-secret", Some(&header), &compact),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn json_of_the_wrong_shape_is_not_reported_as_not_json() {
    let errors = [
        whatsapp::normalize(br#"{"entry":[]}"#).map(|_| ()),
        whatsapp::normalize(br#"{"object":"whatsapp_business_account","entry":{}}"#).map(|_| ()),
        instagram::normalize(
            br#"{"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":"1749416383123"}]}]}"#,
        )
        .map(|_| ()),
        tiktok::normalize(br#"{"type":1,"shop_id":"7494049642642441621","timestamp":1644412885,"data":{}}"#).map(|_| ()),
    ];
    for result in errors {
        let error = result.expect_err("refused");
        assert!(matches!(error, ParseError::WrongShape { .. }), "{error:?}");
    }
}
