//! After a credentials key rotation: every channel's credentials sealed with an earlier key
//! (`ORDERFLOW_CREDENTIALS_KEY_PREVIOUS`) are sealed again with the current one, so the earlier
//! key can be dropped from the configuration once this has run (its log line says so).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::outbound::channels::{ChannelRepository, Error};
use crate::outbound::credentials::CredentialSealer;

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Moved onto the current key.
    pub moved: usize,
    /// Opened by no configured key: left as they are (`GetChannelCredentials` fails for them).
    pub unreadable: usize,
}

/// One pass over every channel with credentials.
pub async fn reseal_all(channels: &ChannelRepository, sealer: &CredentialSealer) -> Result<Resealed, Error> {
    let mut done = Resealed::default();
    for (id, sealed) in channels.all_sealed_credentials().await? {
        match sealer.reseal(id, &sealed) {
            Ok(None) => {}
            // A concurrent SetChannelCredentials sealed with the current key already.
            Ok(Some(resealed)) => {
                done.moved += usize::from(channels.replace_sealed_credentials(id, &sealed, &resealed).await?)
            }
            Err(_) => {
                tracing::warn!(channel_id = %id, "stored credentials open with no configured ORDERFLOW_CREDENTIALS_KEY");
                done.unreadable += 1;
            }
        }
    }
    Ok(done)
}

/// Runs [`reseal_all`] until a pass succeeds (Postgres may be down at start-up), then idles until
/// shutdown: a service task that ends stops the service.
pub async fn run(channels: ChannelRepository, sealer: CredentialSealer, token: CancellationToken) {
    loop {
        match reseal_all(&channels, &sealer).await {
            Ok(done) => {
                tracing::info!(
                    moved = done.moved,
                    unreadable = done.unreadable,
                    "channel credentials are sealed with the current key; the previous keys can be removed"
                );
                token.cancelled().await;
                return;
            }
            Err(err) => tracing::warn!(error = %err, "re-sealing channel credentials failed; retrying"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}
