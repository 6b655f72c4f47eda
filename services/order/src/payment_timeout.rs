//! Cancels orders left in pending_payment past their tenant's payment window (off by default),
//! which releases their stock through `order.cancelled`. Runs continuously; several replicas
//! share the work (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::outbound::orders;

pub async fn run(pool: sqlx::PgPool, namespace: bus::Namespace, every: Duration, token: CancellationToken) {
    loop {
        let pass = async {
            let mut tx = pool.begin().await?;
            let cancelled = orders::cancel_unpaid(&mut tx, &namespace, 200).await.map_err(|e| anyhow::anyhow!(e))?;
            tx.commit().await?;
            Ok::<usize, anyhow::Error>(cancelled)
        }
        .await;
        match pass {
            Ok(0) => {}
            Ok(cancelled) => tracing::info!(cancelled, "cancelled orders past their payment window"),
            Err(err) => tracing::warn!(error = %err, "payment timeout pass failed; will retry"),
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
