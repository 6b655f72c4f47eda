//! TikTok Shop notifications from ingest. A webhook is a signal, not the order: the order detail
//! is fetched from the TikTok Shop API (signed), then the order is created (idempotent on the
//! TikTok order id) or its status applied. The platform's update time orders notifications.

use bus::{Envelope, Handler, HandlerError, Namespace};
use events::ingest::{TiktokNotificationKind, TiktokShopNotification};
use resilience::{Classify, Retryability};
use sqlx::PgConnection;

use crate::domain::tiktok;
use crate::outbound::DbError;
use crate::outbound::codes::OrderCodes;
use crate::outbound::orders::{self, ChangeError, PlatformOutcome};
use crate::outbound::tiktok_api::TiktokApi;

pub const CONSUMER: &str = "order-tiktok-notifications";

pub fn filter_subjects(namespace: &Namespace) -> Vec<String> {
    vec![namespace.event_filter("ingest", 1, "tiktok_shop_notification")]
}

pub struct TiktokEvents {
    pub namespace: Namespace,
    pub api: TiktokApi,
    pub codes: std::sync::Arc<OrderCodes>,
    pub pool: sqlx::PgPool,
}

impl Handler for TiktokEvents {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        let notification = event.decode::<TiktokShopNotification>().map_err(HandlerError::Permanent)?;
        let relevant = matches!(
            notification.kind,
            TiktokNotificationKind::OrderStatusChange
                | TiktokNotificationKind::CancellationStatusChange
                | TiktokNotificationKind::ReturnStatusChange
        );
        let Some(order_id) = notification.order_id.clone().filter(|_| relevant) else { return Ok(()) };
        let detail =
            self.api.order_detail(event.tenant_id, &notification.shop_id, &order_id).await.map_err(|err| match err
                .retryability()
            {
                Retryability::Transient => HandlerError::Transient(err.to_string()),
                Retryability::Permanent => HandlerError::Permanent(err.to_string()),
            })?;
        let mut mapped = tiktok::map(&detail).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        // A completed return is the platform's "returned", which the order detail alone does not say.
        if notification.kind == TiktokNotificationKind::ReturnStatusChange
            && notification.status.as_deref().is_some_and(|s| s.contains("COMPLETE"))
        {
            mapped.status = crate::domain::lifecycle::Status::Returned;
        }
        let packages = detail.packages.iter().map(|p| p.id.clone()).collect();
        let codes = self.codes.clone();
        let pool = self.pool.clone();
        let tenant_id = event.tenant_id;
        let next_code = async move { codes.next(&pool, tenant_id).await };
        let outcome = orders::apply_platform_order(
            tx,
            &self.namespace,
            next_code,
            tenant_id,
            &notification.shop_id,
            &order_id,
            mapped,
            packages,
        )
        .await
        .map_err(|err| match err {
            ChangeError::Database(DbError::Unavailable(detail)) => HandlerError::Transient(detail),
            other => HandlerError::Permanent(other.to_string()),
        })?;
        match outcome {
            PlatformOutcome::Created => tracing::info!(%order_id, "order created from TikTok Shop"),
            PlatformOutcome::Moved { from, to } => tracing::info!(%order_id, %from, %to, "TikTok Shop moved an order"),
            PlatformOutcome::Unchanged => {}
        }
        Ok(())
    }
}
