//! Per-tenant catalog snapshots for the matcher, loaded from inventory over gRPC and refreshed
//! when inventory announces a newer catalog version.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::matcher::CatalogSnapshot;
use crate::outbound::calls::CallError;
use crate::outbound::inventory::InventoryClient;

#[derive(Clone)]
pub struct CatalogCache {
    inventory: InventoryClient,
    snapshots: Arc<Mutex<HashMap<Uuid, Arc<CatalogSnapshot>>>>,
    /// The newest version inventory announced per tenant; a snapshot older than it is reloaded.
    announced: Arc<Mutex<HashMap<Uuid, i64>>>,
}

impl CatalogCache {
    pub fn new(inventory: InventoryClient) -> Self {
        Self { inventory, snapshots: Default::default(), announced: Default::default() }
    }

    pub async fn snapshot(&self, tenant_id: Uuid) -> Result<Arc<CatalogSnapshot>, CallError> {
        let wanted = self.announced.lock().await.get(&tenant_id).copied().unwrap_or(0);
        if let Some(snapshot) = self.snapshots.lock().await.get(&tenant_id).cloned()
            && snapshot.version >= wanted
        {
            return Ok(snapshot);
        }
        let (version, entries) = self.inventory.catalog(tenant_id).await?;
        let snapshot = Arc::new(CatalogSnapshot::new(version, entries));
        self.snapshots.lock().await.insert(tenant_id, snapshot.clone());
        Ok(snapshot)
    }

    /// Inventory says the tenant's catalog reached `version`.
    pub async fn announce(&self, tenant_id: Uuid, version: i64) {
        let mut announced = self.announced.lock().await;
        let entry = announced.entry(tenant_id).or_default();
        *entry = (*entry).max(version);
    }
}
