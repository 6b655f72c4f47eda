//! Expiry: a scheduler inside the service expires due drafts continuously and announces each.
//! Only `pending_review` drafts expire, so a draft being approved is never expired under its
//! approver; several replicas share the work (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use bus::{Envelope, Namespace};
use events::draft::DraftExpired;
use tokio_util::sync::CancellationToken;

use crate::outbound::drafts;

pub async fn expire_due(pool: &sqlx::PgPool, namespace: &Namespace) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let expired = drafts::expire_due(&mut tx, 500).await.map_err(|e| anyhow::anyhow!(e))?;
    for (tenant_id, draft_id) in &expired {
        let event = DraftExpired { draft_id: draft_id.to_string() };
        bus::outbox::enqueue(&mut tx, namespace, Envelope::new(*tenant_id, format!("draft:{draft_id}"), event, None))
            .await?;
    }
    tx.commit().await?;
    Ok(expired.len())
}

pub async fn run(pool: sqlx::PgPool, namespace: Namespace, every: Duration, token: CancellationToken) {
    loop {
        match expire_due(&pool, &namespace).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired drafts"),
            Err(err) => tracing::warn!(error = %err, "expiring drafts failed; will retry"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
