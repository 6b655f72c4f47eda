//! TikTok Shop tokens are refreshed before they expire, through the shared retry policy, against
//! a local server that speaks TikTok's token API.

use std::time::Duration;

use ingest::config::{DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET};
use proto::ingest::v1 as pb;
use testkit::Role;
use testkit::fake_tiktok::FakeTiktok;
use uuid::Uuid;

use crate::helpers::{TestApp, authorized, spawn_app_with};

async fn app_with_fake(fake: &FakeTiktok) -> TestApp {
    let base = fake.base_url.clone();
    spawn_app_with(move |config| {
        config.tiktok_auth_base_url = base;
        config.token_refresh_every = Duration::from_millis(200);
        config.tiktok_retry = resilience::RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            factor: 2.0,
            jitter: false,
        };
    })
    .await
}

async fn store_credentials(app: &TestApp, tenant: Uuid, channel_id: &str, refresh_token: &str, expires_in: Duration) {
    let expires_at = time::OffsetDateTime::now_utc() + expires_in;
    let credentials = pb::ChannelCredentials {
        access_token: "ROW_old_access".into(),
        refresh_token: refresh_token.into(),
        shop_cipher: "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3".into(),
        access_token_expires_at: Some(prost_types::Timestamp { seconds: expires_at.unix_timestamp(), nanos: 0 }),
        refresh_token_expires_at: None,
    };
    let request = pb::SetChannelCredentialsRequest { channel_id: channel_id.into(), credentials: Some(credentials) };
    app.channels_client()
        .await
        .set_channel_credentials(authorized(request, &testkit::token(Some(tenant), Role::Admin)))
        .await
        .expect("set credentials");
}

async fn read_credentials(app: &TestApp, tenant: Uuid, channel_id: &str) -> pb::ChannelCredentials {
    let request = pb::GetChannelCredentialsRequest { channel_id: channel_id.into(), ..Default::default() };
    app.channels_client()
        .await
        .get_channel_credentials(authorized(request, &testkit::token(Some(tenant), Role::Service)))
        .await
        .expect("get credentials")
        .into_inner()
}

#[tokio::test]
async fn a_token_close_to_expiry_is_refreshed_through_429_and_503() {
    let fake = FakeTiktok::start(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET).await;
    fake.fail_next(&[429, 503]);
    let app = app_with_fake(&fake).await;
    let tenant = Uuid::new_v4();
    let channel = app.register_channel_for(tenant, pb::Platform::TiktokShop, "7494049642642441621").await;
    store_credentials(&app, tenant, &channel.id, "ROW_refresh_0", Duration::from_secs(3600)).await;

    testkit::eventually("the access token was replaced", Duration::from_secs(15), || async {
        read_credentials(&app, tenant, &channel.id).await.access_token.starts_with("ROW_access_")
    })
    .await;
    let refreshed = read_credentials(&app, tenant, &channel.id).await;
    assert!(refreshed.refresh_token.starts_with("ROW_refresh_"), "the new refresh token is kept");
    assert_eq!(refreshed.shop_cipher, "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3", "other fields survive");
    assert!(
        refreshed.access_token_expires_at.expect("expiry").seconds
            > time::OffsetDateTime::now_utc().unix_timestamp() + 6 * 24 * 3600
    );
    assert!(fake.refresh_calls() >= 3, "429 and 503 were retried");
}

#[tokio::test]
async fn a_token_far_from_expiry_is_left_alone_and_a_revoked_one_is_recorded() {
    let fake = FakeTiktok::start(DEV_TIKTOK_APP_KEY, DEV_TIKTOK_APP_SECRET).await;
    let app = app_with_fake(&fake).await;
    let tenant = Uuid::new_v4();
    let fresh = app.register_channel_for(tenant, pb::Platform::TiktokShop, "1111").await;
    store_credentials(&app, tenant, &fresh.id, "ROW_refresh_fresh", Duration::from_secs(5 * 24 * 3600)).await;
    let revoked = app.register_channel_for(tenant, pb::Platform::TiktokShop, "2222").await;
    fake.revoke_refresh_token("ROW_refresh_revoked");
    store_credentials(&app, tenant, &revoked.id, "ROW_refresh_revoked", Duration::from_secs(60)).await;

    testkit::eventually("the refusal was recorded", Duration::from_secs(15), || async {
        app.admin_scalar("SELECT count(*) FROM ingest.channels WHERE last_refresh_error LIKE '%105002%'").await == 1
    })
    .await;
    assert_eq!(read_credentials(&app, tenant, &fresh.id).await.access_token, "ROW_old_access");
    assert_eq!(read_credentials(&app, tenant, &revoked.id).await.access_token, "ROW_old_access", "kept until fixed");
}
