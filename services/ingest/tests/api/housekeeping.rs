//! Housekeeping: the running service prunes the raw archive and the de-duplication records past
//! their retention, and what a redelivery does once its record is gone.

use std::time::Duration;

use proto::ingest::v1::Platform;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, fixture, spawn_app_with};

const DAY: Duration = Duration::from_secs(24 * 3600);
const WA: &str = "106540352242922";
/// The shortest window JetStream accepts.
const DUPLICATE_WINDOW: Duration = Duration::from_millis(100);

async fn admin(app: &TestApp) -> sqlx::PgPool {
    app.env.db.admin().await.expect("admin pool")
}

async fn archive_row(pool: &sqlx::PgPool, age: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO ingest.raw_payloads (id, platform, received_at, body, events, duplicates, parked)
         VALUES ($1, 'whatsapp', now() - $2::interval, '{}'::bytea, 1, 0, 0)",
    )
    .bind(id)
    .bind(age)
    .execute(pool)
    .await
    .expect("insert archived payload");
    id
}

async fn dedupe_row(pool: &sqlx::PgPool, key: &str, age: &str) {
    sqlx::query(
        "INSERT INTO ingest.webhook_dedupe (key, event_id, first_seen_at) VALUES ($1, $2, now() - $3::interval)",
    )
    .bind(key)
    .bind(Uuid::new_v4())
    .bind(age)
    .execute(pool)
    .await
    .expect("insert dedupe record");
}

async fn archive_ids(pool: &sqlx::PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM ingest.raw_payloads ORDER BY id").fetch_all(pool).await.expect("archive")
}

async fn dedupe_keys(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT key FROM ingest.webhook_dedupe ORDER BY key").fetch_all(pool).await.expect("dedupe")
}

#[tokio::test]
async fn archived_payloads_and_dedupe_records_past_their_retention_are_pruned_and_newer_ones_kept() {
    // Different retentions for the two tables, so pruning one with the other's shows.
    let app = spawn_app_with(|c| {
        c.archive_retention = DAY;
        c.dedupe_retention = 8 * DAY;
        c.housekeeping_every = Duration::from_millis(100);
    })
    .await;
    app.register_channel(Platform::Whatsapp, WA).await;
    let pool = admin(&app).await;

    let old_archive = [archive_row(&pool, "25 hours").await, archive_row(&pool, "5 days").await];
    let mut kept_archive = vec![archive_row(&pool, "23 hours").await, archive_row(&pool, "1 minute").await];
    dedupe_row(&pool, "test:9-days", "9 days").await;
    dedupe_row(&pool, "test:8-days-1-hour", "8 days 1 hour").await;
    dedupe_row(&pool, "test:7-days-23-hours", "7 days 23 hours").await;
    dedupe_row(&pool, "test:5-days", "5 days").await;
    // A webhook accepted now is archived and recorded like any other.
    let response = app.post_meta("whatsapp", &fixture("whatsapp_text.json")).await;
    assert_eq!(response.status(), 200);

    testkit::eventually("the aged rows are pruned", Duration::from_secs(5), || async {
        let ids = archive_ids(&pool).await;
        let keys = dedupe_keys(&pool).await;
        !old_archive.iter().any(|id| ids.contains(id))
            && !keys.iter().any(|k| k == "test:9-days" || k == "test:8-days-1-hour")
    })
    .await;

    let mut ids = archive_ids(&pool).await;
    let webhook: Uuid = sqlx::query_scalar("SELECT id FROM ingest.raw_payloads WHERE body <> '{}'::bytea")
        .fetch_one(&pool)
        .await
        .expect("the webhook's archived payload stays");
    kept_archive.push(webhook);
    kept_archive.sort();
    ids.sort();
    assert_eq!(ids, kept_archive, "payloads younger than a day stay");
    assert_eq!(
        dedupe_keys(&pool).await,
        vec![
            "test:5-days".to_string(),
            "test:7-days-23-hours".to_string(),
            "wa:msg:wamid.HBgNNDkxNTExMjM0NTY3OBUCABIYFDNBMDJGQzE5NjQ4RjNEMDY4QjNEAA==".to_string(),
        ],
        "de-duplication records younger than eight days stay, even past the archive's retention"
    );
    pool.close().await;
}

async fn post_ok(app: &TestApp, body: &[u8]) -> Value {
    let response = app.post_meta("whatsapp", body).await;
    let status = response.status();
    let json: Value = response.json().await.expect("json response");
    assert_eq!(status, 200, "{json}");
    json
}

/// Why dedupe retention must outlast the platforms' retries (Meta: up to 7 days): once the record
/// is pruned, a redelivery is new to ingest and is published again. Its event id is derived from
/// the platform's message id, so it is the same id, and consumers' inboxes still recognise it.
#[tokio::test]
async fn a_redelivery_after_its_dedupe_record_was_pruned_is_published_again_with_the_same_id() {
    let app = spawn_app_with(|c| {
        c.dedupe_retention = 8 * DAY;
        c.housekeeping_every = Duration::from_millis(100);
        // Nine days later JetStream's duplicate window (two minutes) has long passed; here it is
        // JetStream's shortest, so the stream shows what consumers would receive.
        c.common.bus.duplicate_window = DUPLICATE_WINDOW;
    })
    .await;
    let tenant = app.register_channel(Platform::Whatsapp, WA).await;
    let pool = admin(&app).await;
    let body = fixture("whatsapp_text.json");

    assert_eq!(post_ok(&app, &body).await, json!({ "published": 1, "duplicates": 0, "parked": 0 }));
    app.wait_published("ingest", 1).await;
    let first_published = tokio::time::Instant::now();
    assert_eq!(post_ok(&app, &body).await, json!({ "published": 0, "duplicates": 1, "parked": 0 }), "within retention");

    // Nine days pass: the service prunes the dedupe record; the relay pruned the published outbox
    // row long ago (its retention is a day).
    sqlx::query("UPDATE ingest.webhook_dedupe SET first_seen_at = now() - interval '9 days'")
        .execute(&pool)
        .await
        .expect("age dedupe record");
    sqlx::query("DELETE FROM ingest.outbox WHERE published_at IS NOT NULL").execute(&pool).await.expect("prune outbox");
    testkit::eventually("the dedupe record is pruned", Duration::from_secs(5), || async {
        dedupe_keys(&pool).await.is_empty()
    })
    .await;
    // JetStream forgets message ids by the clock and shows no state to poll.
    tokio::time::sleep_until(first_published + 3 * DUPLICATE_WINDOW).await;

    assert_eq!(
        post_ok(&app, &body).await,
        json!({ "published": 1, "duplicates": 0, "parked": 0 }),
        "without its record the redelivery is new to ingest"
    );
    app.wait_published("ingest", 2).await;
    let payloads = app.stream_payloads("ingest").await;
    let (first, second) = (&payloads[0], &payloads[1]);
    assert_eq!(first.0, format!("{}.ingest.v1.message_received.{tenant}", app.env.namespace));
    assert_eq!(second.0, first.0);
    assert_eq!(second.1["id"], first.1["id"], "the same event id: consumers' inboxes drop the second");
    assert_eq!(second.1["data"], first.1["data"]);
    pool.close().await;
}

/// Outbox rows kept longer than dedupe records (an operator keeping the outbox for audits) must
/// not turn a late redelivery into a 500 that Meta retries until it unsubscribes the endpoint.
#[tokio::test]
async fn a_redelivery_after_its_dedupe_record_was_pruned_but_its_outbox_row_kept_is_still_accepted() {
    let app = spawn_app_with(|c| {
        c.dedupe_retention = 8 * DAY;
        c.housekeeping_every = Duration::from_millis(100);
        c.common.bus.outbox_retention = 30 * DAY;
    })
    .await;
    app.register_channel(Platform::Whatsapp, WA).await;
    let pool = admin(&app).await;
    let body = fixture("whatsapp_text.json");
    assert_eq!(post_ok(&app, &body).await["published"], 1);
    app.wait_published("ingest", 1).await;

    sqlx::query("UPDATE ingest.webhook_dedupe SET first_seen_at = now() - interval '9 days'")
        .execute(&pool)
        .await
        .expect("age dedupe record");
    sqlx::query("UPDATE ingest.outbox SET published_at = now() - interval '9 days'")
        .execute(&pool)
        .await
        .expect("age outbox row");
    testkit::eventually("the dedupe record is pruned", Duration::from_secs(5), || async {
        dedupe_keys(&pool).await.is_empty()
    })
    .await;

    let response = app.post_meta("whatsapp", &body).await;
    assert_eq!(
        response.status(),
        200,
        "a redelivery Meta sent in good faith: {}",
        response.text().await.unwrap_or_default()
    );
    pool.close().await;
}
