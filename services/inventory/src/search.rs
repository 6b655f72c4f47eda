//! Catalog search: a per-tenant index in memory, rebuilt when the tenant's catalog version moves.
//! A search costs one indexed read of the version plus the in-memory ranking.

use std::collections::HashMap;
use std::sync::Arc;

use catalog_match::{CatalogIndex, IndexItem};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::outbound::DbError;
use crate::outbound::catalog::{self, StoredItem};

struct Cached {
    version: i64,
    index: Arc<CatalogIndex>,
    items: Arc<HashMap<String, StoredItem>>,
}

#[derive(Clone, Default)]
pub struct SearchCache {
    tenants: Arc<Mutex<HashMap<Uuid, Arc<Cached>>>>,
}

impl SearchCache {
    pub async fn search(
        &self,
        pool: &sqlx::PgPool,
        tenant_id: Uuid,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(StoredItem, f32)>, DbError> {
        let mut conn = pool.acquire().await.map_err(DbError::from)?;
        let version = catalog::version(&mut conn, tenant_id).await?;
        let cached = self.tenants.lock().await.get(&tenant_id).cloned();
        let cached = match cached {
            Some(cached) if cached.version == version => cached,
            _ => {
                let items = catalog::all_active(&mut conn, tenant_id).await?;
                let index = CatalogIndex::new(items.iter().map(|item| IndexItem {
                    sku: item.sku.clone(),
                    name: item.name.clone(),
                    attributes: item.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                }));
                let fresh = Arc::new(Cached {
                    version,
                    index: Arc::new(index),
                    items: Arc::new(items.into_iter().map(|i| (i.sku.clone(), i)).collect()),
                });
                self.tenants.lock().await.insert(tenant_id, fresh.clone());
                fresh
            }
        };
        Ok(cached
            .index
            .search(query, limit, 0.35)
            .into_iter()
            .filter_map(|m| cached.items.get(m.sku).map(|item| (item.clone(), m.score)))
            .collect())
    }
}
