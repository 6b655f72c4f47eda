//! After a credentials key rotation: every channel's credentials sealed with an earlier key
//! (`ORDERFLOW_CREDENTIALS_KEY_PREVIOUS`) are sealed again with the current one, so the earlier
//! key can be dropped from the configuration once a pass says so.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::outbound::channels::{self, ChannelRepository};
use crate::outbound::credentials::{CredentialSealer, Error};

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Moved onto the current key.
    pub moved: usize,
    /// Opened by no configured key: left as they are (`GetChannelCredentials` fails for them).
    pub unreadable: usize,
}

/// One pass over every channel with credentials.
pub async fn reseal_all(channels: &ChannelRepository, sealer: &CredentialSealer) -> Result<Resealed, channels::Error> {
    let mut done = Resealed::default();
    for (id, sealed) in channels.all_sealed_credentials().await? {
        match sealer.reseal(id, &sealed) {
            Ok(None) => {}
            // Not replaced when SetChannelCredentials wrote new ones meanwhile (sealed with the current key).
            Ok(Some(resealed)) => {
                done.moved += usize::from(channels.replace_sealed_credentials(id, &sealed, &resealed).await?)
            }
            Err(Error::Open) => {
                tracing::warn!(channel_id = %id, "stored credentials open with no configured ORDERFLOW_CREDENTIALS_KEY");
                done.unreadable += 1;
            }
            // Sealing failed (the system's random source): try again on the next pass.
            Err(_) => {}
        }
    }
    Ok(done)
}

/// How often the pass runs. During a rolling restart the replicas still on the old key keep
/// sealing with it, so one pass at start-up is not the end of a rotation.
pub const EVERY: Duration = Duration::from_secs(300);

/// Runs [`reseal_all`] at start-up and then every [`EVERY`] until shutdown, whether or not earlier
/// keys are configured: without them the pass only finds and reports credentials that no key opens.
/// "The previous keys can be removed" is logged once a pass with earlier keys configured finds
/// nothing left to move and nothing unreadable.
pub async fn run(channels: ChannelRepository, sealer: CredentialSealer, token: CancellationToken) {
    let mut reported_clean = false;
    loop {
        match reseal_all(&channels, &sealer).await {
            Ok(done) if done.moved > 0 || done.unreadable > 0 => {
                reported_clean = false;
                tracing::warn!(
                    moved = done.moved,
                    unreadable = done.unreadable,
                    "channel credentials were not all sealed with the current ORDERFLOW_CREDENTIALS_KEY"
                );
            }
            Ok(_) if sealer.has_previous() && !reported_clean => {
                reported_clean = true;
                tracing::info!(
                    "every channel's credentials are sealed with the current key; the previous keys can be removed"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "re-sealing channel credentials failed; the next pass retries"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
