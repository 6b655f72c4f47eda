//! Inventory's catalog changes: the matcher's snapshot of that tenant is reloaded on next use.

use bus::{Envelope, Handler, HandlerError, Namespace};
use events::inventory::CatalogChanged;
use sqlx::PgConnection;

use crate::catalog_cache::CatalogCache;

pub const CONSUMER: &str = "draft-catalog-changes";

pub fn filter_subjects(namespace: &Namespace) -> Vec<String> {
    vec![namespace.event_filter("inventory", 1, "catalog_changed")]
}

pub struct CatalogEvents {
    pub cache: CatalogCache,
}

impl Handler for CatalogEvents {
    async fn handle(&self, _tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        let changed = event.decode::<CatalogChanged>().map_err(HandlerError::Permanent)?;
        self.cache.announce(event.tenant_id, changed.catalog_version).await;
        Ok(())
    }
}
