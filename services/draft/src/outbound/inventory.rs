//! The inventory service, as the draft service uses it: the catalog snapshot, and reserving or
//! releasing stock for an approval.

use money::Money;
use proto::inventory::v1 as pb;
use proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use super::calls::{CallError, Caller};
use crate::domain::draft::Item;
use crate::domain::matcher::CatalogEntry;

#[derive(Clone)]
pub struct InventoryClient {
    client: InventoryServiceClient<Channel>,
    caller: Caller,
}

impl InventoryClient {
    pub fn new(channel: Channel, caller: Caller) -> Self {
        Self { client: InventoryServiceClient::new(channel), caller }
    }

    /// The tenant's active catalog and its version.
    pub async fn catalog(&self, tenant_id: Uuid) -> Result<(i64, Vec<CatalogEntry>), CallError> {
        let mut entries = Vec::new();
        let mut page_token = String::new();
        loop {
            let request =
                pb::ListCatalogRequest { page_size: 1000, page_token: page_token.clone(), include_inactive: false };
            let page = self
                .caller
                .call("list catalog", || {
                    let mut client = self.client.clone();
                    let request = self.caller.request(tenant_id, None, request.clone());
                    async move { client.list_catalog(request).await.map(|r| r.into_inner()) }
                })
                .await?;
            let version = page.catalog_version;
            for item in page.items {
                let Some(price) = item.price.as_ref() else { continue };
                let Ok(currency) = price.currency.parse::<money::Currency>() else { continue };
                entries.push(CatalogEntry {
                    sku: item.sku,
                    name: item.name,
                    attributes: item.attributes.into_iter().collect(),
                    price: Money::new(price.amount_minor, currency),
                    retailer_id: Some(item.retailer_id).filter(|r| !r.is_empty()),
                });
            }
            if page.next_page_token.is_empty() {
                return Ok((version, entries));
            }
            page_token = page.next_page_token;
        }
    }

    /// Holds the stock of the items under `reference`, all or nothing.
    pub async fn reserve(
        &self,
        tenant_id: Uuid,
        user: Option<&str>,
        reference: &str,
        items: &[Item],
    ) -> Result<(), CallError> {
        let request = reserve_request(reference, items);
        self.caller
            .call("reserve stock", || {
                let mut client = self.client.clone();
                let request = self.caller.request(tenant_id, user, request.clone());
                async move { client.reserve(request).await.map(|_| ()) }
            })
            .await
    }

    /// Several holds of one tenant in one call (ReserveMany), each all or nothing and answered
    /// on its own: `(user, reference, items)` per entry, one result per entry in order.
    pub async fn reserve_many(
        &self,
        tenant_id: Uuid,
        entries: &[(Option<&str>, &str, &[Item])],
    ) -> Result<Vec<Result<(), CallError>>, CallError> {
        let request = pb::ReserveManyRequest {
            entries: entries
                .iter()
                .map(|(user, reference, items)| pb::ReserveManyEntry {
                    reserve: Some(reserve_request(reference, items)),
                    on_behalf_of: user.unwrap_or_default().to_string(),
                })
                .collect(),
        };
        let answer = self
            .caller
            .call("reserve stock", || {
                let mut client = self.client.clone();
                let request = self.caller.request(tenant_id, None, request.clone());
                async move { client.reserve_many(request).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(self.caller.entry_results(
            entries.len(),
            answer.results.into_iter().map(|result| match result.outcome {
                Some(pb::reserve_many_result::Outcome::Reservation(_)) => Ok(()),
                Some(pb::reserve_many_result::Outcome::Failure(failure)) => Err(failure.to_status()),
                None => Err(tonic::Status::unavailable("an entry without an outcome")),
            }),
        ))
    }

    /// Releases a hold (idempotent; an unknown reference is fine: nothing was held).
    pub async fn release(
        &self,
        tenant_id: Uuid,
        user: Option<&str>,
        reference: &str,
        reason: &str,
    ) -> Result<(), CallError> {
        let request = pb::ReleaseRequest { reference: reference.to_string(), reason: reason.to_string() };
        let result = self
            .caller
            .call("release stock", || {
                let mut client = self.client.clone();
                let request = self.caller.request(tenant_id, user, request.clone());
                async move { client.release(request).await.map(|_| ()) }
            })
            .await;
        match result {
            Err(CallError::Refused { code: tonic::Code::NotFound, .. }) => Ok(()),
            other => other,
        }
    }
}

fn reserve_request(reference: &str, items: &[Item]) -> pb::ReserveRequest {
    pb::ReserveRequest {
        reference: reference.to_string(),
        items: items
            .iter()
            .filter_map(|i| {
                Some(pb::ReserveItem { sku: i.sku.clone()?, quantity: i.quantity, location: String::new() })
            })
            .collect(),
    }
}
