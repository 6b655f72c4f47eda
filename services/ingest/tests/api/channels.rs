//! The channel registry over gRPC: roles, tenants, duplicates, credentials.

use std::time::Duration;

use ingest::outbound::credentials::CredentialSealer;
use proto::ingest::v1 as pb;
use settings::Secret;
use testkit::Role;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{authorized, spawn_app};

fn register(tenant: Uuid, external_id: &str) -> pb::RegisterChannelRequest {
    pb::RegisterChannelRequest {
        tenant_id: tenant.to_string(),
        platform: pb::Platform::Whatsapp as i32,
        external_id: external_id.into(),
        display_name: "Shop".into(),
    }
}

#[tokio::test]
async fn the_three_refusals_missing_token_weak_role_other_tenant() {
    let app = spawn_app().await;
    let mut client = app.channels_client().await;
    let tenant = Uuid::new_v4();

    let missing = client.register_channel(tonic::Request::new(register(tenant, "1"))).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let garbage = client.register_channel(authorized(register(tenant, "1"), "not-a-jwt")).await.unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    let admin = testkit::token(Some(tenant), Role::Admin);
    let weak = client.register_channel(authorized(register(tenant, "1"), &admin)).await.unwrap_err();
    assert_eq!(weak.code(), Code::PermissionDenied, "registering needs the operator");

    let channel = app.register_channel_for(tenant, pb::Platform::Whatsapp, "1").await;
    let other_admin = testkit::token(Some(Uuid::new_v4()), Role::Admin);
    let credentials = pb::ChannelCredentials { access_token: "t".into(), ..Default::default() };
    let foreign = client
        .set_channel_credentials(authorized(
            pb::SetChannelCredentialsRequest { channel_id: channel.id.clone(), credentials: Some(credentials) },
            &other_admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound, "another tenant's channel does not exist for them");
}

#[tokio::test]
async fn one_platform_id_belongs_to_one_tenant() {
    let app = spawn_app().await;
    app.register_channel_for(Uuid::new_v4(), pb::Platform::Whatsapp, "555").await;
    let mut client = app.channels_client().await;
    let operator = testkit::token(None, Role::Operator);
    let again = client.register_channel(authorized(register(Uuid::new_v4(), "555"), &operator)).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let bad = client.register_channel(authorized(register(Uuid::new_v4(), "bad id!"), &operator)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_tenant_admin_lists_only_its_own_channels() {
    let app = spawn_app().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    app.register_channel_for(a, pb::Platform::Whatsapp, "100").await;
    app.register_channel_for(b, pb::Platform::Instagram, "200").await;
    let mut client = app.channels_client().await;

    let as_a = testkit::token(Some(a), Role::Admin);
    let asking_for_b = pb::ListChannelsRequest { tenant_id: b.to_string() };
    let listed = client.list_channels(authorized(asking_for_b, &as_a)).await.expect("list").into_inner().channels;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tenant_id, a.to_string());

    let viewer = testkit::token(Some(a), Role::Viewer);
    let denied = client.list_channels(authorized(pb::ListChannelsRequest::default(), &viewer)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let operator = testkit::token(None, Role::Operator);
    let all = client.list_channels(authorized(pb::ListChannelsRequest::default(), &operator)).await.expect("list");
    assert_eq!(all.into_inner().channels.len(), 2);
}

#[tokio::test]
async fn credentials_are_sealed_and_handed_only_to_services_of_the_tenant() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let channel = app.register_channel_for(tenant, pb::Platform::TiktokShop, "7494049642642441621").await;
    let mut client = app.channels_client().await;
    let credentials = pb::ChannelCredentials {
        access_token: "ROW_secret_access".into(),
        refresh_token: "ROW_secret_refresh".into(),
        shop_cipher: "GCP_cipher".into(),
        ..Default::default()
    };
    let admin = testkit::token(Some(tenant), Role::Admin);
    let updated = client
        .set_channel_credentials(authorized(
            pb::SetChannelCredentialsRequest { channel_id: channel.id.clone(), credentials: Some(credentials.clone()) },
            &admin,
        ))
        .await
        .expect("set")
        .into_inner();
    assert!(updated.has_credentials);
    let stored_plain = app
        .admin_scalar(
            "SELECT count(*) FROM ingest.channels WHERE position('ROW_secret_access'::bytea in credentials) > 0",
        )
        .await;
    assert_eq!(stored_plain, 0, "credentials are encrypted at rest");

    let get = |token: String| {
        pb::GetChannelCredentialsRequest { channel_id: channel.id.clone(), ..Default::default() }.with_token(token)
    };
    let denied = client.get_channel_credentials(get(admin.clone())).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "even the tenant admin cannot read them back");
    let other_service = testkit::token(Some(Uuid::new_v4()), Role::Service);
    assert_eq!(client.get_channel_credentials(get(other_service)).await.unwrap_err().code(), Code::NotFound);
    let service = testkit::token(Some(tenant), Role::Service);
    let read = client.get_channel_credentials(get(service)).await.expect("service reads").into_inner();
    assert_eq!(read, credentials);
}

trait WithToken: Sized {
    fn with_token(self, token: String) -> tonic::Request<Self>;
}

impl<T> WithToken for T {
    fn with_token(self, token: String) -> tonic::Request<Self> {
        authorized(self, &token)
    }
}

#[tokio::test]
async fn after_a_key_rotation_stored_credentials_stay_readable_and_move_onto_the_new_key() {
    const OLD_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const NEW_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let mut before = crate::helpers::spawn_app_with(|config| config.credentials_key = Secret::new(OLD_KEY)).await;
    let tenant = Uuid::new_v4();
    let channel = before.register_channel_for(tenant, pb::Platform::TiktokShop, "7494049642642441621").await;
    let credentials = pb::ChannelCredentials { access_token: "ROW_rotated".into(), ..Default::default() };
    before
        .channels_client()
        .await
        .set_channel_credentials(authorized(
            pb::SetChannelCredentialsRequest { channel_id: channel.id.clone(), credentials: Some(credentials.clone()) },
            &testkit::token(Some(tenant), Role::Admin),
        ))
        .await
        .expect("set");
    let env = testkit::TestEnv {
        db: testkit::TestDb { name: before.env.db.name.clone() },
        namespace: before.env.namespace.clone(),
    };
    before.token.cancel();
    (&mut before._running).await.expect("join").expect("stopped cleanly");

    // Restarted with the new key, the old one listed as previous.
    let mut config = ingest::Config::for_tests(env.common("ingest"));
    config.credentials_key = Secret::new(NEW_KEY);
    config.credentials_key_previous = Secret::new(OLD_KEY);
    let after = crate::helpers::spawn_on(env, config).await;
    let read = after
        .channels_client()
        .await
        .get_channel_credentials(
            pb::GetChannelCredentialsRequest { channel_id: channel.id.clone(), ..Default::default() }
                .with_token(testkit::token(Some(tenant), Role::Service)),
        )
        .await
        .expect("readable during the rotation")
        .into_inner();
    assert_eq!(read, credentials);

    // The re-seal moves the stored blob onto the new key: the old key can then be dropped.
    let new_key_alone = CredentialSealer::from_base64(NEW_KEY).expect("key");
    let channel_id: Uuid = channel.id.parse().expect("uuid");
    let pool = after.env.db.admin().await.expect("admin pool");
    testkit::eventually("credentials re-sealed with the new key", Duration::from_secs(10), || {
        let pool = pool.clone();
        let sealer = new_key_alone.clone();
        async move {
            let sealed: Vec<u8> = sqlx::query_scalar("SELECT credentials FROM ingest.channels WHERE id = $1")
                .bind(channel_id)
                .fetch_one(&pool)
                .await
                .expect("row");
            sealer.open(channel_id, &sealed).is_ok()
        }
    })
    .await;
    pool.close().await;

    // A pass with a key that opens nothing reports the channel as unreadable and leaves it be.
    let ingest_pool = db::connect(&db::DbConfig {
        url: Secret::new(after.env.db.service_url("ingest").expect("url")),
        schema: "ingest".into(),
        max_connections: 1,
        batch_max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
    })
    .expect("pool");
    let channels = ingest::outbound::channels::ChannelRepository::new(ingest_pool.clone());
    let wrong_key = CredentialSealer::with_previous(OLD_KEY, "").expect("key");
    let wrong = ingest::reseal::reseal_all(&channels, &wrong_key).await.expect("pass");
    assert_eq!(wrong, ingest::reseal::Resealed { moved: 0, unreadable: 1 });
    let right = ingest::reseal::reseal_all(&channels, &new_key_alone).await.expect("pass");
    assert_eq!(right, ingest::reseal::Resealed::default(), "nothing left to move");
    ingest_pool.close().await;
}
