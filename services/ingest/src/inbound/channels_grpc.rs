//! `orderflow.ingest.v1.ChannelService`: the channel registry over gRPC.

use proto::ingest::v1 as pb;
use proto::ingest::v1::channel_service_server::ChannelService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use events::ingest::Platform;

use crate::outbound::channels::{self, Channel, ChannelRepository};
use crate::outbound::credentials::CredentialSealer;

pub struct ChannelApi {
    pub channels: ChannelRepository,
    pub sealer: CredentialSealer,
}

/// Repository errors as gRPC statuses, in one place.
fn status(err: channels::Error) -> Status {
    match err {
        channels::Error::AlreadyRegistered(what) => Status::already_exists(format!("{what} is already registered")),
        channels::Error::NotFound => Status::not_found("channel not found"),
        channels::Error::Unavailable(detail) => {
            tracing::warn!(%detail, "channel registry unavailable");
            Status::unavailable("channel registry temporarily unavailable")
        }
        channels::Error::Internal(detail) => {
            tracing::error!(%detail, "channel registry failed");
            Status::internal("internal error")
        }
    }
}

fn platform_from(value: i32) -> Result<Platform, Status> {
    match pb::Platform::try_from(value) {
        Ok(pb::Platform::Whatsapp) => Ok(Platform::Whatsapp),
        Ok(pb::Platform::Instagram) => Ok(Platform::Instagram),
        Ok(pb::Platform::TiktokShop) => Ok(Platform::TiktokShop),
        Ok(pb::Platform::Unspecified) | Err(_) => Err(Status::invalid_argument("platform is required")),
    }
}

fn platform_to(platform: Platform) -> pb::Platform {
    match platform {
        Platform::Whatsapp => pb::Platform::Whatsapp,
        Platform::Instagram => pb::Platform::Instagram,
        Platform::TiktokShop => pb::Platform::TiktokShop,
    }
}

fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: i32::try_from(at.nanosecond()).unwrap_or(0) }
}

fn to_proto(channel: Channel) -> pb::Channel {
    pb::Channel {
        id: channel.id.to_string(),
        tenant_id: channel.tenant_id.to_string(),
        platform: platform_to(channel.platform) as i32,
        external_id: channel.external_id,
        display_name: channel.display_name,
        enabled: channel.enabled,
        created_at: Some(timestamp(channel.created_at)),
        has_credentials: channel.has_credentials,
    }
}

fn parse_uuid(field: &str, value: &str) -> Result<Uuid, Status> {
    value.parse().map_err(|_| Status::invalid_argument(format!("{field} must be a UUID")))
}

/// Channel ids of other tenants are indistinguishable from ids that do not exist.
fn parse_channel_id(value: &str) -> Result<Uuid, Status> {
    value.parse().map_err(|_| Status::not_found("channel not found"))
}

#[tonic::async_trait]
impl ChannelService for ChannelApi {
    async fn register_channel(
        &self,
        request: Request<pb::RegisterChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        auth::grpc::principal(&request)?.operator()?;
        let body = request.into_inner();
        let tenant_id = parse_uuid("tenant_id", &body.tenant_id)?;
        let platform = platform_from(body.platform)?;
        let external_id = body.external_id.trim();
        if external_id.is_empty()
            || external_id.len() > 64
            || !external_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Status::invalid_argument("external_id must be 1-64 letters, digits, '-' or '_'"));
        }
        let channel =
            self.channels.register(tenant_id, platform, external_id, body.display_name.trim()).await.map_err(status)?;
        tracing::info!(channel_id = %channel.id, %tenant_id, platform = platform.as_str(), "channel registered");
        Ok(Response::new(to_proto(channel)))
    }

    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        let principal = auth::grpc::principal(&request)?;
        let tenant_filter = if principal.operator().is_ok() {
            let requested = request.get_ref().tenant_id.trim();
            (!requested.is_empty()).then(|| parse_uuid("tenant_id", requested)).transpose()?
        } else {
            // A tenant admin sees its own tenant's channels, whatever it asked for.
            Some(principal.tenant_with(auth::Role::Admin)?)
        };
        let channels = self.channels.list(tenant_filter).await.map_err(status)?;
        Ok(Response::new(pb::ListChannelsResponse { channels: channels.into_iter().map(to_proto).collect() }))
    }

    async fn disable_channel(
        &self,
        request: Request<pb::DisableChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        auth::grpc::principal(&request)?.operator()?;
        let id = parse_channel_id(&request.get_ref().channel_id)?;
        let channel = self.channels.disable(id).await.map_err(status)?;
        tracing::info!(channel_id = %channel.id, "channel disabled");
        Ok(Response::new(to_proto(channel)))
    }

    async fn enable_channel(
        &self,
        request: Request<pb::EnableChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        auth::grpc::principal(&request)?.operator()?;
        let id = parse_channel_id(&request.get_ref().channel_id)?;
        let channel = self.channels.enable(id).await.map_err(status)?;
        tracing::info!(channel_id = %channel.id, "channel enabled");
        Ok(Response::new(to_proto(channel)))
    }

    async fn set_channel_credentials(
        &self,
        request: Request<pb::SetChannelCredentialsRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let principal = auth::grpc::principal(&request)?;
        let tenant_scope =
            if principal.operator().is_ok() { None } else { Some(principal.tenant_with(auth::Role::Admin)?) };
        let body = request.into_inner();
        let id = parse_channel_id(&body.channel_id)?;
        let credentials = body.credentials.ok_or_else(|| Status::invalid_argument("credentials are required"))?;
        if credentials.access_token.trim().is_empty() {
            return Err(Status::invalid_argument("credentials.access_token is required"));
        }
        let expires_at = credentials
            .access_token_expires_at
            .as_ref()
            .map(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds))
            .transpose()
            .map_err(|_| Status::invalid_argument("access_token_expires_at is out of range"))?;
        let plaintext = prost::Message::encode_to_vec(&credentials);
        let sealed = self.sealer.seal(id, &plaintext).map_err(|_| Status::internal("internal error"))?;
        let channel = self.channels.set_credentials(id, tenant_scope, &sealed, expires_at).await.map_err(status)?;
        tracing::info!(channel_id = %channel.id, "channel credentials updated");
        Ok(Response::new(to_proto(channel)))
    }

    async fn get_channel_credentials(
        &self,
        request: Request<pb::GetChannelCredentialsRequest>,
    ) -> Result<Response<pb::ChannelCredentials>, Status> {
        let tenant_id = auth::grpc::principal(&request)?.service()?;
        let body = request.into_inner();
        let (id, sealed) = if body.channel_id.trim().is_empty() {
            let platform = platform_from(body.platform)?;
            self.channels
                .sealed_credentials_by_external_id(platform, body.external_id.trim(), tenant_id)
                .await
                .map_err(status)?
        } else {
            let id = parse_channel_id(&body.channel_id)?;
            (id, self.channels.sealed_credentials(id, tenant_id).await.map_err(status)?)
        };
        let sealed = sealed.ok_or_else(|| Status::failed_precondition("no credentials are stored for this channel"))?;
        let plaintext = self.sealer.open(id, &sealed).map_err(|_| {
            tracing::error!(channel_id = %id, "stored credentials cannot be opened: wrong ORDERFLOW_CREDENTIALS_KEY?");
            Status::internal("internal error")
        })?;
        let credentials: pb::ChannelCredentials =
            prost::Message::decode(plaintext.as_slice()).map_err(|_| Status::internal("internal error"))?;
        Ok(Response::new(credentials))
    }
}
