//! Every fixture through HTTP, signed as the platform signs it, committed and published: the
//! envelope each message kind becomes on JetStream, redeliveries, replays, tenants and metrics.

use std::collections::HashSet;

use proto::ingest::v1::Platform;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::helpers::{TestApp, fixture, sample, spawn_app};

const WA: &str = "106540352242922";
const WA_JP: &str = "109876543210987";
const IG: &str = "17841405822304914";
const SHOP: &str = "7494049642642441621";

/// The outbound WhatsApp messages the statuses and replies in the fixtures refer to.
const WAMID_OUT_1: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QjVFMTRGRUM0MjM3QzA5QjkA";
const WAMID_OUT_2: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBNzQ0RDFCQjA3QjE4NjVDRDIA";
/// The Instagram message the business sent (echo), which the customer then reacted to and read.
const IG_OUT_MID: &str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTY0MjQ1MjIzNDc0NTIyNjozMTk0OTQ3OTI2NzY4OTM2NjQwNjgxNzI4MjU2MjAwNTM3NZDZD";
const IG_CUSTOMER: &str = "1254459154682919";
/// The customer's Instagram message ids differ only in their last characters.
const IG_IN_MID_PREFIX: &str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTY0MjQ1MjIzNDc0NTIyNjozMjA5NjcwNjk0NzYwNjUwNjk0NjU2ODAwMzE2MTg2MT";

#[derive(Clone, Copy)]
enum Endpoint {
    Whatsapp,
    Instagram,
    Tiktok,
}

/// One published event: its name (`<ns>.ingest.v1.<name>.<tenant>`) and what its `data` holds.
struct Expect {
    name: &'static str,
    check: fn(&Value),
}

fn expect(name: &'static str, check: fn(&Value)) -> Expect {
    Expect { name, check }
}

/// One fixture, the channels that route it, and the events it must become, in order.
struct Case {
    fixture: &'static str,
    endpoint: Endpoint,
    channels: &'static [(Platform, &'static str)],
    events: Vec<Expect>,
}

impl TestApp {
    async fn post_to(&self, endpoint: Endpoint, body: &[u8]) -> reqwest::Response {
        match endpoint {
            Endpoint::Whatsapp => self.post_meta("whatsapp", body).await,
            Endpoint::Instagram => self.post_meta("instagram", body).await,
            Endpoint::Tiktok => self.post_tiktok(body).await,
        }
    }
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json response");
    assert_eq!(status, 200, "{body}");
    body
}

fn epoch_nanos(value: &Value) -> i128 {
    let text = value.as_str().unwrap_or_else(|| panic!("{value} is not a timestamp"));
    time::OffsetDateTime::parse(text, &Rfc3339).expect("rfc3339").unix_timestamp_nanos()
}

fn seconds(s: i64) -> i128 {
    i128::from(s) * 1_000_000_000
}

fn millis(ms: i64) -> i128 {
    i128::from(ms) * 1_000_000
}

/// Drives every case through one app and one tenant: a fresh POST publishes exactly the expected
/// events, the same POST again publishes nothing.
async fn drive(cases: Vec<Case>) {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let admin = app.env.db.admin().await.expect("admin pool");
    let mut registered = HashSet::new();
    let mut total = 0usize;
    for case in cases {
        println!("fixture {}", case.fixture);
        for &(platform, external_id) in case.channels {
            if registered.insert(external_id) {
                app.register_channel_for(tenant, platform, external_id).await;
            }
        }
        let body = fixture(case.fixture);
        let n = case.events.len();
        let fresh = ok_json(app.post_to(case.endpoint, &body).await).await;
        assert_eq!(fresh, json!({ "published": n, "duplicates": 0, "parked": 0 }), "{}", case.fixture);
        let before = total;
        total += n;
        app.wait_published("ingest", total as u64).await;
        let payloads = app.stream_payloads("ingest").await;
        assert_eq!(payloads.len(), total);

        for (i, ((subject, envelope), expected)) in payloads[before..].iter().zip(&case.events).enumerate() {
            println!("  event {i}: {subject}");
            assert_eq!(subject, &format!("{}.ingest.v1.{}.{tenant}", app.env.namespace, expected.name));
            assert_eq!(envelope["type"], format!("ingest.{}", expected.name));
            assert_eq!(envelope["version"], 1);
            assert_eq!(envelope["tenant_id"], tenant.to_string());
            // The id is derived from the de-duplication key, so a redelivery maps to the same id.
            let id: Uuid = envelope["id"].as_str().and_then(|s| s.parse().ok()).expect("envelope id");
            let key: String = sqlx::query_scalar("SELECT key FROM ingest.webhook_dedupe WHERE event_id = $1")
                .bind(id)
                .fetch_one(&admin)
                .await
                .expect("the event id is recorded against its de-duplication key");
            let data = &envelope["data"];
            let platform_id = data["message_id"].as_str().or(data["notification_id"].as_str()).expect("an id");
            assert!(key.contains(platform_id), "key {key} is about {platform_id}");
            (expected.check)(data);
        }

        let again = ok_json(app.post_to(case.endpoint, &body).await).await;
        assert_eq!(again, json!({ "published": 0, "duplicates": n, "parked": 0 }), "{} redelivered", case.fixture);
        // The redelivery is committed before its 200: nothing new can reach the stream.
        assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox").await, total as i64);
        assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.webhook_dedupe").await, total as i64);
    }
    assert_eq!(app.stream_count("ingest").await, total as u64);
    assert_eq!(app.stream_count("dlq").await, 0, "nothing parked");
    admin.close().await;
}

fn wa_message(d: &Value, message_id: &str, customer: &str) {
    assert_eq!(d["platform"], "whatsapp");
    assert_eq!(d["message_id"], message_id);
    assert_eq!(d["customer"]["platform_id"], customer);
}

fn wa_status(d: &Value, message_id: &str, status: &str, at: i64) {
    assert_eq!(d["platform"], "whatsapp");
    assert_eq!(d["channel_id"], WA);
    assert_eq!(d["message_id"], message_id);
    assert_eq!(d["status"], status);
    assert_eq!(d["raw_status"], status);
    assert_eq!(d["recipient_id"], "16505551234");
    assert_eq!(epoch_nanos(&d["at"]), seconds(at));
}

fn media(d: &Value, kind: &str, id: &str, mime: &str, caption: Option<&str>) {
    let c = &d["content"];
    assert_eq!(c["kind"], "media");
    assert_eq!(c["media_kind"], kind);
    assert_eq!(c["media_id"], id);
    assert_eq!(c["mime_type"], mime);
    assert_eq!(c["caption"], json!(caption));
}

fn item(item: &Value, sku: &str, quantity: i64, amount_minor: i64, currency: &str, price_text: &str) {
    assert_eq!(item["product_retailer_id"], sku);
    assert_eq!(item["quantity"], quantity);
    assert_eq!(item["unit_price"], json!({ "amount_minor": amount_minor, "currency": currency }));
    assert_eq!(item["price_text"], price_text);
    assert_eq!(item["currency"], currency);
}

fn whatsapp_message_cases() -> Vec<Case> {
    let wa = &[(Platform::Whatsapp, WA)];
    let case = |fixture, events| Case { fixture, endpoint: Endpoint::Whatsapp, channels: wa, events };
    vec![
        case(
            "whatsapp_text.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBMDJGQzE5NjQ4RjNEMDY4QjNEAA==", "4915112345678");
                assert_eq!(d["channel_id"], WA);
                assert_eq!(d["customer"]["name"], "Jürgen Müller");
                assert_eq!(d["customer"]["phone_e164"], "+4915112345678");
                assert_eq!(epoch_nanos(&d["sent_at"]), seconds(1_749_416_383));
                assert_eq!(
                    d["content"],
                    json!({ "kind": "text", "body": "Grüße! Gibt es das Shirt auch in Blau? 👕" })
                );
                assert_eq!(d["referral"]["source_id"], "120208875326820178");
                assert_eq!(d["reply_to"], Value::Null);
            })],
        ),
        case(
            "whatsapp_bsuid_no_phone.json",
            vec![expect("message_received", |d| {
                wa_message(
                    d,
                    "wamid.HBgTREUuMTQxMDAxODcxNzgzMzE5MBUCABIYFDNBQkJDQ0RERUVGRjAwMTEyMjMzAA==",
                    "DE.1410018717833190",
                );
                assert_eq!(d["customer"]["name"], "Lena");
                assert_eq!(d["customer"]["phone_e164"], Value::Null, "a business-scoped id is not a phone number");
                assert_eq!(d["content"]["body"], "Hallo, ist der Laden heute offen?");
            })],
        ),
        case(
            "whatsapp_button.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUYyQjk3RTVEMDE5QzE4MzQ1RQA=", "16505551234");
                assert_eq!(
                    d["content"],
                    json!({ "kind": "interactive", "reply_id": "TRACK_ORDER_8841", "title": "Track my order" })
                );
                assert_eq!(d["reply_to"], WAMID_OUT_1);
            })],
        ),
        case(
            "whatsapp_interactive_button.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTc3RjMzQkE5QzI0NUM2RjYwOQA=", "16505551234");
                assert_eq!(
                    d["content"],
                    json!({ "kind": "interactive", "reply_id": "confirm_order_8841", "title": "Confirm order" })
                );
                assert_eq!(d["reply_to"], WAMID_OUT_1);
            })],
        ),
        case(
            "whatsapp_interactive_list.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBNUQ0QjkxMDhFRkI4QjM4RjI3AA==", "4915112345678");
                assert_eq!(d["content"], json!({ "kind": "interactive", "reply_id": "size_m", "title": "Größe M" }));
                assert_eq!(d["reply_to"], WAMID_OUT_2);
            })],
        ),
        case(
            "whatsapp_contacts.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBRjZGNkY3QTdBOEE5QjBCMUMyAA==", "4915112345678");
                let c = &d["content"];
                assert_eq!(c["kind"], "contacts");
                assert_eq!(c["contacts"][0]["name"]["formatted_name"], "Anna Schröder");
                assert_eq!(c["contacts"][0]["phones"][0]["wa_id"], "4915123456789");
            })],
        ),
        case(
            "whatsapp_document.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTJDNzE5RjgwQjNFNkQ1RDQ0MQA=", "16505551234");
                media(d, "document", "1250713456328914", "application/pdf", Some("Invoice for order #8841"));
            })],
        ),
        case(
            "whatsapp_image.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBOUUxQzIyRDBGODQxQ0E3QjU1AA==", "4915112345678");
                media(d, "image", "1003383421387256", "image/jpeg", Some("Dieses Muster, aber größer?"));
            })],
        ),
        case(
            "whatsapp_media.json",
            vec![
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUExQUExQUExQUExQUExQUExQQA=", "16505551234");
                    media(d, "sticker", "835416958493118", "image/webp", None);
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUIyQjJCMkIyQjJCMkIyQjJCMgA=", "16505551234");
                    media(d, "audio", "1528743247957380", "audio/ogg; codecs=opus", None);
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUMzQzNDM0MzQzNDM0MzQzNDMwA=", "16505551234");
                    media(d, "video", "2096513207505232", "video/mp4", Some("So sieht es bei mir aus ☹"));
                }),
            ],
        ),
        case(
            "whatsapp_location.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBNEQ3QUY5NjZFQjIyQjY4MDFDAA==", "4915112345678");
                assert_eq!(
                    d["content"],
                    json!({
                        "kind": "location",
                        "latitude": 48.137154,
                        "longitude": 11.576124,
                        "name": "Marienplatz",
                        "address": "Marienplatz 1, 80331 München",
                    })
                );
            })],
        ),
        case(
            "whatsapp_reaction.json",
            vec![
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUQ0RDREMUUyRTNFNEU1RTZFNwA=", "16505551234");
                    assert_eq!(
                        d["content"],
                        json!({ "kind": "reaction", "target_message_id": WAMID_OUT_1, "emoji": "👍" })
                    );
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUU1RTVFMkYzRjRGNUY2RjdGOAA=", "16505551234");
                    assert_eq!(
                        d["content"],
                        json!({ "kind": "reaction", "target_message_id": WAMID_OUT_1, "emoji": null }),
                        "a reaction without an emoji is a reaction removed"
                    );
                }),
            ],
        ),
        case(
            "whatsapp_order.json",
            vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwNkE4RjA5QkQ0NzVEMjlGQgA=", "16505551234");
                let c = &d["content"];
                assert_eq!(c["kind"], "catalog_order");
                assert_eq!(c["catalog_id"], "1204975393921416");
                assert_eq!(c["note"], "Please gift wrap the mug – thanks!");
                let items = c["items"].as_array().expect("items");
                assert_eq!(items.len(), 3);
                item(&items[0], "TSHIRT-BLU-M", 2, 1299, "USD", "12.99");
                item(&items[1], "MUG-CERAMIC-01", 1, 3000, "USD", "30");
                item(&items[2], "STICKER-PACK-5", 3, 450, "USD", "4.5");
            })],
        ),
        case(
            "whatsapp_unknown_type.json",
            vec![
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTg4OEE4ODhCODg4Qzg4OEQ4OAA=", "16505551234");
                    assert_eq!(d["content"]["kind"], "unsupported");
                    assert_eq!(d["content"]["raw_type"], "unsupported");
                    assert_eq!(d["content"]["raw"]["unsupported"]["type"], "edit");
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTk5OUE5OTlCOTk5Qzk5OUQ5OQA=", "16505551234");
                    assert_eq!(d["content"]["kind"], "unsupported");
                    assert_eq!(d["content"]["raw_type"], "ephemeral");
                    assert_eq!(d["content"]["raw"]["ephemeral"]["ttl_seconds"], 86400);
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUFBQUFBQUJBQUFBQ0FBQUREQQA=", "16505551234");
                    assert_eq!(d["content"]["kind"], "unsupported", "a Flow reply is not a button or list reply");
                    assert_eq!(d["content"]["raw_type"], "interactive");
                    assert_eq!(d["content"]["raw"]["interactive"]["type"], "nfm_reply");
                }),
            ],
        ),
    ]
}

fn whatsapp_status_and_yen_cases() -> Vec<Case> {
    vec![
        Case {
            fixture: "whatsapp_statuses.json",
            endpoint: Endpoint::Whatsapp,
            channels: &[(Platform::Whatsapp, WA)],
            events: vec![
                expect("message_status_updated", |d| {
                    wa_status(d, WAMID_OUT_1, "sent", 1_749_420_200);
                    assert_eq!(d["errors"], json!([]));
                }),
                expect("message_status_updated", |d| wa_status(d, WAMID_OUT_1, "delivered", 1_749_420_201)),
                expect("message_status_updated", |d| wa_status(d, WAMID_OUT_1, "read", 1_749_420_260)),
                expect("message_status_updated", |d| {
                    wa_status(d, WAMID_OUT_2, "failed", 1_749_420_300);
                    let errors = d["errors"].as_array().expect("errors");
                    assert_eq!(errors.len(), 1);
                    assert_eq!(errors[0]["code"], 131047);
                    assert_eq!(errors[0]["title"], "Re-engagement message");
                    assert_eq!(
                        errors[0]["details"],
                        "Message failed to send because more than 24 hours have passed since the customer last \
                         replied to this number."
                    );
                }),
            ],
        },
        Case {
            fixture: "whatsapp_order_jpy.json",
            endpoint: Endpoint::Whatsapp,
            channels: &[(Platform::Whatsapp, WA_JP)],
            events: vec![expect("message_received", |d| {
                wa_message(d, "wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0FCN0UyMDk5QzRGNjFBMkQ1RTgA", "818012345678");
                assert_eq!(d["channel_id"], WA_JP);
                assert_eq!(d["customer"]["name"], "田中花子");
                assert_eq!(d["customer"]["phone_e164"], "+818012345678");
                let c = &d["content"];
                assert_eq!(c["kind"], "catalog_order");
                assert_eq!(c["catalog_id"], "879123456789012");
                assert_eq!(c["note"], "よろしくお願いします");
                let items = c["items"].as_array().expect("items");
                assert_eq!(items.len(), 2);
                // The yen has no minor unit: 1500 yen is 1500, not 150000.
                item(&items[0], "MATCHA-100G", 2, 1500, "JPY", "1500");
                item(&items[1], "CHASEN-80", 1, 3200, "JPY", "3200");
            })],
        },
    ]
}

/// Its own app: its `delivered` status repeats one in `whatsapp_statuses.json`.
fn whatsapp_batched_case() -> Vec<Case> {
    vec![
        // Two entries, four `messages` changes and a template status change in one POST: one
        // event per message and status, in the order Meta sent them; the template change is not one.
        Case {
            fixture: "whatsapp_batched.json",
            endpoint: Endpoint::Whatsapp,
            channels: &[(Platform::Whatsapp, WA), (Platform::Whatsapp, WA_JP)],
            events: vec![
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQjAxQjAxQjAxQjAxQjAxQjAxQgA=", "16505551234");
                    assert_eq!(d["channel_id"], WA);
                    assert_eq!(d["customer"]["name"], "Sheena Nelson");
                    assert_eq!(d["content"]["body"], "Is order 8841 shipped yet?");
                }),
                expect("message_received", |d| {
                    wa_message(
                        d,
                        "wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNCMDJCMDJCMDJCMDJCMDJCMDJCAA==",
                        "4915112345678",
                    );
                    assert_eq!(d["customer"]["name"], "Jürgen Müller");
                    assert_eq!(d["content"]["body"], "Schönen Tag noch!");
                }),
                expect("message_status_updated", |d| {
                    assert_eq!(d["message_id"], "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QjVFMTRGRUM0MjM3QzA5QjkA");
                    assert_eq!(d["status"], "delivered");
                    assert_eq!(epoch_nanos(&d["at"]), seconds(1_750_003_202));
                }),
                expect("message_status_updated", |d| {
                    assert_eq!(d["message_id"], "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBNzQ0RDFCQjA3QjE4NjVDRDIA");
                    assert_eq!(d["status"], "read");
                    assert_eq!(d["recipient_id"], "4915112345678");
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0IwM0IwM0IwM0IwM0IwM0IwM0IA", "818012345678");
                    assert_eq!(d["channel_id"], WA_JP);
                    assert_eq!(d["content"]["body"], "ありがとうございます");
                }),
                expect("message_received", |d| {
                    wa_message(d, "wamid.HBgMODE4MDEyMzQ1Njc4FQIAEhgUM0IwNEIwNEIwNEIwNEIwNEIwNEIA", "818012345678");
                    assert_eq!(d["channel_id"], WA_JP);
                    assert_eq!(
                        d["content"],
                        json!({
                            "kind": "reaction",
                            "target_message_id": "wamid.HBgMODE4MDEyMzQ1Njc4FQIAERgSQkU1RjA0QjM2MDk4NEQ1QjMA",
                            "emoji": "🙏",
                        })
                    );
                }),
            ],
        },
    ]
}

fn ig_message(d: &Value, mid_suffix: &str, sent_at_ms: i64) {
    assert_eq!(d["platform"], "instagram");
    assert_eq!(d["channel_id"], IG);
    assert_eq!(d["message_id"], format!("{IG_IN_MID_PREFIX}{mid_suffix}"));
    assert_eq!(d["customer"], json!({ "platform_id": IG_CUSTOMER, "name": null, "phone_e164": null }));
    assert_eq!(epoch_nanos(&d["sent_at"]), millis(sent_at_ms), "Instagram timestamps are milliseconds");
}

fn instagram_cases() -> Vec<Case> {
    let ig = &[(Platform::Instagram, IG)];
    let case = |fixture, events| Case { fixture, endpoint: Endpoint::Instagram, channels: ig, events };
    vec![
        case(
            "instagram_text.json",
            vec![
                expect("message_received", |d| {
                    ig_message(d, "Q0MZDZD", 1_749_416_383_123);
                    assert_eq!(d["content"], json!({ "kind": "text", "body": "Grüße aus München 👋" }));
                    assert_eq!(d["reply_to"], Value::Null);
                }),
                expect("message_received", |d| {
                    ig_message(d, "Q0NZDZD", 1_749_416_390_999);
                    assert_eq!(d["content"], json!({ "kind": "text", "body": "Und in Größe L?" }));
                    assert_eq!(d["reply_to"], IG_OUT_MID);
                }),
            ],
        ),
        case(
            "instagram_attachment.json",
            vec![expect("message_received", |d| {
                ig_message(d, "Q1MZDZD", 1_749_416_400_500);
                let c = &d["content"];
                assert_eq!(c["kind"], "media");
                assert_eq!(c["media_kind"], "image");
                assert_eq!(
                    c["url"],
                    "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17987745012345678&signature=AbyQ3xPm8sLg"
                );
                assert_eq!(c["caption"], Value::Null);
            })],
        ),
        case(
            "instagram_story_reply.json",
            vec![expect("message_received", |d| {
                ig_message(d, "Q2MZDZD", 1_749_416_410_250);
                assert_eq!(
                    d["content"],
                    json!({
                        "kind": "story_reply",
                        "story_id": "17920465738122812",
                        "story_url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17920465738122812&signature=AbzR4yQn9tMh",
                        "text": "Süß! Wie viel kostet die Tasche?",
                    })
                );
            })],
        ),
        case(
            "instagram_echo.json",
            vec![expect("echo_received", |d| {
                assert_eq!(
                    d,
                    &json!({
                        "platform": "instagram",
                        "channel_id": IG,
                        "message_id": IG_OUT_MID,
                        "recipient_id": IG_CUSTOMER,
                        "sent_at": d["sent_at"],
                        "text": "Danke für deine Bestellung!",
                    }),
                    "an echo is not a customer message: no customer, no content"
                );
                assert_eq!(epoch_nanos(&d["sent_at"]), millis(1_749_416_420_750));
            })],
        ),
        case(
            "instagram_reaction.json",
            vec![
                expect("message_received", |d| {
                    assert_eq!(d["customer"]["platform_id"], IG_CUSTOMER);
                    assert_eq!(
                        d["content"],
                        json!({ "kind": "reaction", "target_message_id": IG_OUT_MID, "emoji": "❤\u{fe0f}" })
                    );
                }),
                expect("message_received", |d| {
                    assert_eq!(
                        d["content"],
                        json!({ "kind": "reaction", "target_message_id": IG_OUT_MID, "emoji": null }),
                        "unreact removes the reaction"
                    );
                    assert_eq!(epoch_nanos(&d["sent_at"]), millis(1_749_416_440_002));
                }),
            ],
        ),
        case(
            "instagram_read.json",
            vec![expect("message_status_updated", |d| {
                assert_eq!(d["platform"], "instagram");
                assert_eq!(d["channel_id"], IG);
                assert_eq!(d["message_id"], IG_OUT_MID);
                assert_eq!(d["status"], "read");
                assert_eq!(d["recipient_id"], IG_CUSTOMER);
                assert_eq!(epoch_nanos(&d["at"]), millis(1_749_416_450_300));
            })],
        ),
        case(
            "instagram_postback.json",
            vec![expect("message_received", |d| {
                ig_message(d, "Q3MZDZD", 1_749_416_460_400);
                assert_eq!(
                    d["content"],
                    json!({ "kind": "interactive", "reply_id": "TRACK_ORDER_8841", "title": "Bestellung verfolgen" })
                );
            })],
        ),
        case(
            "instagram_quick_reply.json",
            vec![expect("message_received", |d| {
                ig_message(d, "Q4MZDZD", 1_749_416_470_999);
                assert_eq!(d["content"], json!({ "kind": "interactive", "reply_id": "SIZE_M", "title": "Größe M" }));
            })],
        ),
    ]
}

fn tiktok(d: &Value, notification_id: &str, kind: &str, order_id: Option<&str>, status: Option<&str>, update: i64) {
    assert_eq!(d["shop_id"], SHOP, "the shop id as an exact decimal string");
    assert_eq!(d["notification_id"], notification_id);
    assert_eq!(d["kind"], kind);
    assert_eq!(d["order_id"], json!(order_id));
    assert_eq!(d["status"], json!(status));
    assert_eq!(d["update_time"], update);
    assert_eq!(epoch_nanos(&d["sent_at"]), seconds(1_644_412_885));
}

fn tiktok_cases() -> Vec<Case> {
    let shop = &[(Platform::TiktokShop, SHOP)];
    let case = |fixture, events| Case { fixture, endpoint: Endpoint::Tiktok, channels: shop, events };
    vec![
        // Shop and order ids as bare JSON numbers above 2^53: a float would end them in ...000.
        case(
            "tiktok_order_status_number_ids.json",
            vec![expect("tiktok_shop_notification", |d| {
                tiktok(
                    d,
                    "7327112393057371910",
                    "order_status_change",
                    Some("576486316948490001"),
                    Some("AWAITING_SHIPMENT"),
                    1_644_412_880,
                );
                assert_eq!(d["notification_type"], 1);
                let raw = d["raw_data"].as_str().expect("raw data");
                assert!(raw.contains("576486316948490001"), "the raw data keeps the id's digits: {raw}");
            })],
        ),
        case(
            "tiktok_order_status_string_ids.json",
            vec![expect("tiktok_shop_notification", |d| {
                tiktok(
                    d,
                    "7327112393057371911",
                    "order_status_change",
                    Some("576486316948490002"),
                    Some("UNPAID"),
                    1_644_412_845,
                );
            })],
        ),
        case(
            "tiktok_cancellation.json",
            vec![expect("tiktok_shop_notification", |d| {
                tiktok(
                    d,
                    "7327112393057371912",
                    "cancellation_status_change",
                    Some("576486316948490001"),
                    Some("CANCELLATION_REQUEST_PENDING"),
                    1_627_587_600,
                );
                assert_eq!(d["notification_type"], 11);
            })],
        ),
        case(
            "tiktok_return.json",
            vec![expect("tiktok_shop_notification", |d| {
                tiktok(
                    d,
                    "7327112393057371913",
                    "return_status_change",
                    Some("576486316948490001"),
                    Some("RETURN_OR_REFUND_REQUEST_PENDING"),
                    1_644_412_880,
                );
                assert_eq!(d["notification_type"], 12);
            })],
        ),
        case(
            "tiktok_package.json",
            vec![expect("tiktok_shop_notification", |d| {
                tiktok(d, "7327112393057371914", "package_update", None, None, 1_644_412_880);
                assert!(d["raw_data"].as_str().expect("raw data").contains("1153132168123859123"));
            })],
        ),
    ]
}

#[tokio::test]
async fn every_whatsapp_message_kind_is_published_with_its_content() {
    drive(whatsapp_message_cases()).await;
}

#[tokio::test]
async fn whatsapp_statuses_with_their_errors_and_yen_orders_are_published_exactly() {
    drive(whatsapp_status_and_yen_cases()).await;
}

#[tokio::test]
async fn a_batched_whatsapp_delivery_is_one_event_per_message_and_status_in_order() {
    drive(whatsapp_batched_case()).await;
}

#[tokio::test]
async fn every_instagram_event_is_published_and_echoes_are_not_customer_messages() {
    drive(instagram_cases()).await;
}

#[tokio::test]
async fn every_tiktok_notification_is_published_with_exact_ids() {
    drive(tiktok_cases()).await;
}

#[tokio::test]
async fn an_instagram_echo_never_appears_as_a_customer_message() {
    let app = spawn_app().await;
    app.register_channel(Platform::Instagram, IG).await;
    ok_json(app.post_meta("instagram", &fixture("instagram_echo.json")).await).await;
    ok_json(app.post_meta("instagram", &fixture("instagram_text.json")).await).await;
    app.wait_published("ingest", 3).await;
    let payloads = app.stream_payloads("ingest").await;
    let echoes: Vec<_> = payloads.iter().filter(|(s, _)| s.contains(".echo_received.")).collect();
    assert_eq!(echoes.len(), 1);
    for (subject, envelope) in payloads.iter().filter(|(s, _)| s.contains(".message_received.")) {
        assert_ne!(envelope["data"]["message_id"], IG_OUT_MID, "{subject}: the echo was published as a message");
    }
}

#[tokio::test]
async fn tiktok_webhooks_with_a_bad_signature_are_refused_and_nothing_is_stored() {
    use ingest::config::{DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET};
    use ingest::domain::signature::sign_tiktok;

    let app = spawn_app().await;
    app.register_channel(Platform::TiktokShop, SHOP).await;
    let body = fixture("tiktok_order_status_number_ids.json");
    let good = sign_tiktok(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET.as_bytes(), &body);
    let refusals = [
        ("wrong app secret", sign_tiktok(DEV_TIKTOK_APP_KEY, b"not-the-app-secret", &body)),
        ("wrong app key", sign_tiktok("not-the-app-key", DEV_TIKTOK_APP_SECRET.as_bytes(), &body)),
        ("Bearer prefix", format!("Bearer {good}")),
        ("body only, no app key", {
            let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(DEV_TIKTOK_APP_SECRET.as_bytes())
                .expect("hmac key");
            hmac::Mac::update(&mut mac, &body);
            hex::encode(hmac::Mac::finalize(mac).into_bytes())
        }),
        ("not hex", "zz".repeat(32)),
    ];
    for (what, header) in refusals {
        let response = app
            .http
            .post(format!("{}/webhooks/tiktok", app.base))
            .header("content-type", "application/json")
            .header("authorization", header)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{what}");
    }
    let unsigned =
        app.http.post(format!("{}/webhooks/tiktok", app.base)).body(body.clone()).send().await.expect("send");
    assert_eq!(unsigned.status(), 401, "no Authorization header");
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 0);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox").await, 0);

    // The same body correctly signed is accepted: the refusals were about the signature alone.
    assert_eq!(ok_json(app.post_tiktok(&body).await).await["published"], 1);
}

#[tokio::test]
async fn a_tiktok_replay_with_another_timestamp_is_one_event() {
    let app = spawn_app().await;
    let tenant = app.register_channel(Platform::TiktokShop, SHOP).await;
    let body = fixture("tiktok_order_status_string_ids.json");
    let first = ok_json(app.post_tiktok(&body).await).await;
    assert_eq!(first, json!({ "published": 1, "duplicates": 0, "parked": 0 }));

    // The MAC covers no timestamp: a replay may be re-signed with a fresh one. Same
    // `tts_notification_id`, same event.
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("\"timestamp\": 1644412885"));
    let replay = text.replace("\"timestamp\": 1644412885", "\"timestamp\": 1644499285");
    let second = ok_json(app.post_tiktok(replay.as_bytes()).await).await;
    assert_eq!(second, json!({ "published": 0, "duplicates": 1, "parked": 0 }));

    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox").await, 1);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 2, "both POSTs archived");
    app.wait_published("ingest", 1).await;
    let (subject, envelope) = app.stream_payloads("ingest").await.remove(0);
    assert_eq!(subject, format!("{}.ingest.v1.tiktok_shop_notification.{tenant}", app.env.namespace));
    assert_eq!(epoch_nanos(&envelope["data"]["sent_at"]), seconds(1_644_412_885), "the first delivery's");
}

#[tokio::test]
async fn a_webhook_for_one_tenants_channel_reaches_that_tenant_only() {
    let app = spawn_app().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    app.register_channel_for(a, Platform::Whatsapp, WA).await;
    app.register_channel_for(b, Platform::Whatsapp, WA_JP).await;

    ok_json(app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await).await;
    app.wait_published("ingest", 1).await;
    let (subject, envelope) = app.stream_payloads("ingest").await.remove(0);
    assert_eq!(subject, format!("{}.ingest.v1.message_received.{a}", app.env.namespace));
    assert_eq!(envelope["tenant_id"], a.to_string());
    assert_eq!(envelope["data"]["channel_id"], WA);

    ok_json(app.post_meta("whatsapp", &fixture("whatsapp_order_jpy.json")).await).await;
    app.wait_published("ingest", 2).await;
    let payloads = app.stream_payloads("ingest").await;
    let tenants: Vec<(String, String)> = payloads
        .iter()
        .map(|(s, e)| (s.rsplit('.').next().unwrap_or_default().to_string(), e["tenant_id"].to_string()))
        .collect();
    assert_eq!(
        tenants,
        vec![(a.to_string(), format!("\"{a}\"")), (b.to_string(), format!("\"{b}\""))],
        "each event on its own tenant's subject, with its own tenant id"
    );
    assert_eq!(payloads[1].1["data"]["channel_id"], WA_JP);
}

#[tokio::test]
async fn metrics_count_accepted_webhooks_and_duplicate_events() {
    let app = spawn_app().await;
    app.register_channel(Platform::Whatsapp, WA).await;
    let text = fixture("whatsapp_text.json");
    ok_json(app.post_meta("whatsapp", &text).await).await;
    ok_json(app.post_meta("whatsapp", &text).await).await;
    ok_json(app.post_meta("whatsapp", &fixture("whatsapp_statuses.json")).await).await;
    ok_json(app.post_meta("whatsapp", &fixture("whatsapp_statuses.json")).await).await;
    let unsigned =
        app.http.post(format!("{}/webhooks/whatsapp", app.base)).body(text.clone()).send().await.expect("send");
    assert_eq!(unsigned.status(), 401);

    let metrics = app.metrics().await;
    let webhooks = |outcome: &str| {
        sample(&metrics, "ingest_webhooks_total", &["platform=\"whatsapp\"", &format!("outcome=\"{outcome}\"")])
    };
    let events = |result: &str| {
        sample(&metrics, "ingest_events_total", &["platform=\"whatsapp\"", &format!("result=\"{result}\"")])
    };
    assert_eq!(webhooks("accepted"), Some(4.0), "{metrics}");
    assert_eq!(webhooks("unauthorized"), Some(1.0), "{metrics}");
    assert_eq!(events("published"), Some(5.0), "{metrics}");
    assert_eq!(events("duplicate"), Some(5.0), "{metrics}");
    assert_eq!(events("parked"), None, "nothing parked: {metrics}");
}
