//! Webhooks end to end: signed POST → durable commit → one event on JetStream.

use std::time::Duration;

use proto::ingest::v1::Platform;

use crate::helpers::{TestApp, fixture, sample, spawn_app, spawn_app_with};

const WA_PHONE_NUMBER_ID: &str = "106540352242922";

async fn app_with_whatsapp_channel() -> (TestApp, uuid::Uuid) {
    let app = spawn_app().await;
    let tenant = app.register_channel(Platform::Whatsapp, WA_PHONE_NUMBER_ID).await;
    (app, tenant)
}

#[tokio::test]
async fn a_signed_whatsapp_text_becomes_one_event_for_the_channels_tenant() {
    let (app, tenant) = app_with_whatsapp_channel().await;
    let response = app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await;
    assert_eq!(response.status(), 200);
    app.wait_published("ingest", 1).await;

    let (subject, envelope) = app.stream_payloads("ingest").await.remove(0);
    assert_eq!(subject, format!("{}.ingest.v1.message_received.{tenant}", app.env.namespace));
    assert_eq!(envelope["type"], "ingest.message_received");
    assert_eq!(envelope["tenant_id"], tenant.to_string());
    assert_eq!(envelope["data"]["customer"]["phone_e164"], "+4915112345678");
    assert_eq!(envelope["data"]["customer"]["name"], "Jürgen Müller");
    assert_eq!(envelope["data"]["content"]["kind"], "text");
    assert!(envelope["data"]["content"]["body"].as_str().expect("body").starts_with("Grüße!"));
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 1, "raw payload archived");
}

#[tokio::test]
async fn the_same_webhook_twice_or_twenty_times_at_once_is_one_event() {
    let (app, _) = app_with_whatsapp_channel().await;
    let body = fixture("whatsapp_text.json");
    let sends = (0..20).map(|_| app.post_meta("whatsapp", &body));
    for response in futures::future::join_all(sends).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.post_meta("whatsapp", &body).await.status(), 200, "a retry later is also acknowledged");
    app.wait_published("ingest", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.stream_count("ingest").await, 1);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox").await, 1);
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_webhooks_are_refused_and_nothing_is_stored() {
    let (app, _) = app_with_whatsapp_channel().await;
    let body = fixture("whatsapp_text.json");
    let url = format!("{}/webhooks/whatsapp", app.base);
    let unsigned = app.http.post(&url).body(body.clone()).send().await.expect("send");
    assert_eq!(unsigned.status(), 401);
    let forged = ingest::domain::signature::sign_meta(b"not-the-app-secret", &body);
    let wrong =
        app.http.post(&url).header("x-hub-signature-256", forged).body(body.clone()).send().await.expect("send");
    assert_eq!(wrong.status(), 401);
    let tampered_body = String::from_utf8(body.clone()).expect("utf8").replace("Blau", "Rot!");
    let good_signature = ingest::domain::signature::sign_meta(ingest::config::DEV_META_APP_SECRET.as_bytes(), &body);
    let tampered = app
        .http
        .post(&url)
        .header("x-hub-signature-256", good_signature)
        .body(tampered_body)
        .send()
        .await
        .expect("send");
    assert_eq!(tampered.status(), 401);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 0);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox").await, 0);
}

#[tokio::test]
async fn during_a_secret_rotation_webhooks_signed_with_either_secret_are_accepted_and_the_old_one_counted() {
    use ingest::config::{DEV_META_APP_SECRET, DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET};
    use ingest::domain::signature::{sign_meta, sign_tiktok};
    let app = spawn_app_with(|config| {
        config.meta_app_secret = settings::Secret::new("rotated-meta-secret");
        config.meta_app_secret_previous = settings::Secret::new(DEV_META_APP_SECRET);
        config.tiktok_app_secret = settings::Secret::new("rotated-tiktok-secret");
        config.tiktok_app_secret_previous = settings::Secret::new(DEV_TIKTOK_APP_SECRET);
    })
    .await;
    app.register_channel(Platform::Whatsapp, WA_PHONE_NUMBER_ID).await;
    let post = |path: &'static str, header: &'static str, signature: String, body: Vec<u8>| {
        let request = app.http.post(format!("{}/webhooks/{path}", app.base)).header(header, signature).body(body);
        async move { request.send().await.expect("send").status() }
    };

    // The retry of a delivery signed before the reset, then new deliveries signed after it.
    let text = fixture("whatsapp_text.json");
    assert_eq!(
        post("whatsapp", "x-hub-signature-256", sign_meta(DEV_META_APP_SECRET.as_bytes(), &text), text).await,
        200
    );
    let statuses = fixture("whatsapp_statuses.json");
    let signature = sign_meta(b"rotated-meta-secret", &statuses);
    assert_eq!(post("whatsapp", "x-hub-signature-256", signature, statuses).await, 200);
    let order = fixture("tiktok_order_status_string_ids.json");
    let signature = sign_tiktok(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET.as_bytes(), &order);
    assert_eq!(post("tiktok", "authorization", signature, order).await, 200);
    let cancellation = fixture("tiktok_cancellation.json");
    let signature = sign_tiktok(DEV_TIKTOK_APP_KEY, b"rotated-tiktok-secret", &cancellation);
    assert_eq!(post("tiktok", "authorization", signature, cancellation).await, 200);
    // Any other secret is still refused.
    let other = fixture("whatsapp_image.json");
    assert_eq!(post("whatsapp", "x-hub-signature-256", sign_meta(b"third", &other), other).await, 401);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 4);

    let metrics = app.metrics().await;
    let previous = |platform: &str| {
        sample(&metrics, "ingest_webhooks_previous_secret_total", &[&format!("platform=\"{platform}\"")])
    };
    assert_eq!(previous("whatsapp"), Some(1.0), "{metrics}");
    assert_eq!(previous("tiktok_shop"), Some(1.0), "{metrics}");
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason_and_nothing_is_stored() {
    let (app, _) = app_with_whatsapp_channel().await;
    for body in [&b"not json"[..], br#"{"object":"page","entry":[]}"#, br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{}}}]}]}"#] {
        let response = app.post_meta("whatsapp", body).await;
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(body));
        let reason: serde_json::Value = response.json().await.expect("json");
        assert!(!reason["error"].as_str().unwrap_or_default().is_empty());
    }
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.raw_payloads").await, 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = crate::helpers::spawn_app_with(|c| c.max_body_bytes = 64 * 1024).await;
    let big = vec![b' '; 65 * 1024];
    assert_eq!(app.post_meta("whatsapp", &big).await.status(), 413);
}

#[tokio::test]
async fn an_unknown_channel_is_acknowledged_and_parked_with_its_reason() {
    let app = spawn_app().await;
    let response = app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await;
    assert_eq!(response.status(), 200, "the platform must not retry forever");
    app.wait_published("dlq", 1).await;
    let (subject, parked) = app.stream_payloads("dlq").await.remove(0);
    assert_eq!(subject, format!("{}.dlq.ingest.parked", app.env.namespace));
    assert_eq!(parked["type"], "ingest.message_received", "the event itself is kept for replay");
    let headers = app.stream_headers("dlq").await.remove(0);
    assert_eq!(headers["Orderflow-Dlq-Reason"], "unknown channel");
    assert_eq!(headers["Orderflow-Channel-Id"], WA_PHONE_NUMBER_ID);
    assert!(headers["Orderflow-Dlq-Original-Subject"].contains(".ingest.v1.message_received."));
    assert_eq!(app.stream_count("ingest").await, 0);
}

#[tokio::test]
async fn a_disabled_channel_parks_its_events() {
    let app = spawn_app().await;
    let channel = app.register_channel_for(uuid::Uuid::new_v4(), Platform::Whatsapp, WA_PHONE_NUMBER_ID).await;
    let channel_id = channel.id.clone();
    let mut client = app.channels_client().await;
    let operator = testkit::token(None, testkit::Role::Operator);
    client
        .disable_channel(crate::helpers::authorized(
            proto::ingest::v1::DisableChannelRequest { channel_id: channel.id },
            &operator,
        ))
        .await
        .expect("disable");
    assert_eq!(app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await.status(), 200);
    app.wait_published("dlq", 1).await;
    let headers = app.stream_headers("dlq").await.remove(0);
    assert_eq!(headers["Orderflow-Dlq-Reason"], "channel disabled");

    // Enabled again, the channel's next message is published.
    let enabled = client
        .enable_channel(crate::helpers::authorized(
            proto::ingest::v1::EnableChannelRequest { channel_id: channel_id.clone() },
            &operator,
        ))
        .await
        .expect("enable")
        .into_inner();
    assert!(enabled.enabled);
    let body = String::from_utf8(fixture("whatsapp_text.json")).expect("utf8").replace("wamid.HBgN", "wamid.XBgN");
    assert_eq!(app.post_meta("whatsapp", body.as_bytes()).await.status(), 200);
    app.wait_published("ingest", 1).await;
}

#[tokio::test]
async fn meta_verification_echoes_the_challenge_only_for_our_token() {
    let app = spawn_app().await;
    let url = |token: &str| {
        format!("{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}", app.base)
    };
    let ok = app.http.get(url(ingest::config::DEV_META_VERIFY_TOKEN)).send().await.expect("send");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    let wrong = app.http.get(url("guess")).send().await.expect("send");
    assert_eq!(wrong.status(), 403);
    let ig = app
        .http
        .get(url(ingest::config::DEV_META_VERIFY_TOKEN).replace("whatsapp", "instagram"))
        .send()
        .await
        .expect("send");
    assert_eq!(ig.status(), 200);
}

#[tokio::test]
async fn nats_down_still_answers_200_and_publishes_once_when_it_returns() {
    let mut nats = testkit::NatsServer::start().await.expect("own nats");
    let env = testkit::TestEnv::new().await;
    let mut common = env.common("ingest");
    common.bus.url = nats.url();
    let app = crate::helpers::spawn_on(env, ingest::Config::for_tests(common)).await;
    let tenant = app.register_channel(Platform::Whatsapp, WA_PHONE_NUMBER_ID).await;
    let _ = tenant;
    nats.stop();

    let body = fixture("whatsapp_text.json");
    assert_eq!(app.post_meta("whatsapp", &body).await.status(), 200);
    assert_eq!(app.post_meta("whatsapp", &body).await.status(), 200);
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL").await, 1);

    nats.resume().await.expect("nats back");
    testkit::eventually("published after NATS returned", Duration::from_secs(30), || async {
        app.admin_scalar("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL").await == 0
    })
    .await;
    let client = async_nats::connect(nats.url()).await.expect("nats");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(app.namespace().stream_name("ingest")).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn postgres_down_answers_503_and_the_retry_after_it_returns_is_accepted_once() {
    let proxy = testkit::TcpProxy::to_postgres().await;
    let env = testkit::TestEnv::new().await;
    let mut common = env.common("ingest");
    common.db.url = settings::Secret::new(proxy.rewrite_url(&env.db.service_url("ingest").expect("url")));
    common.db.acquire_timeout = Duration::from_millis(500);
    let app = crate::helpers::spawn_on(env, ingest::Config::for_tests(common)).await;
    app.register_channel(Platform::Whatsapp, WA_PHONE_NUMBER_ID).await;

    proxy.cut();
    let body = fixture("whatsapp_text.json");
    assert_eq!(app.post_meta("whatsapp", &body).await.status(), 503);
    let ready = app.http.get(format!("{}/readyz", app.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 503, "not ready without Postgres");

    proxy.restore();
    testkit::eventually("accepted after Postgres returned", Duration::from_secs(20), || async {
        app.post_meta("whatsapp", &body).await.status() == 200
    })
    .await;
    assert_eq!(app.post_meta("whatsapp", &body).await.status(), 200);
    app.wait_published("ingest", 1).await;
    assert_eq!(app.admin_scalar("SELECT count(*) FROM ingest.webhook_dedupe").await, 1);
}

#[tokio::test]
async fn a_webhooks_events_carry_the_requests_trace_context() {
    // The webhook's span is the parent of everything downstream: the draft consumer continues it.
    let (app, _tenant) = app_with_whatsapp_channel().await;
    let response = app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await;
    assert_eq!(response.status(), 200);
    app.wait_published("ingest", 1).await;

    let (_, envelope) = app.stream_payloads("ingest").await.remove(0);
    let traceparent = envelope["trace"]["traceparent"].as_str().expect("the envelope's trace has a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "W3C traceparent: {traceparent}");
    assert_ne!(parts[1], "0".repeat(32), "a real trace id");
    let headers = app.stream_headers("ingest").await.remove(0);
    assert_eq!(headers.get("traceparent").map(String::as_str), Some(traceparent), "also sent as a NATS header");
}
