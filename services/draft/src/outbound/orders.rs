//! The order service, as the approval uses it: CreateOrder with the draft id as idempotency key.

use proto::common::v1::Money as PbMoney;
use proto::order::v1 as pb;
use proto::order::v1::order_service_client::OrderServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use super::calls::{CallError, Caller};
use super::drafts::DraftRecord;

#[derive(Clone)]
pub struct OrderClient {
    client: OrderServiceClient<Channel>,
    caller: Caller,
}

fn money(m: money::Money) -> PbMoney {
    PbMoney { amount_minor: m.amount_minor, currency: m.currency.code().to_string() }
}

impl OrderClient {
    pub fn new(channel: Channel, caller: Caller) -> Self {
        Self { client: OrderServiceClient::new(channel), caller }
    }

    /// Creates the draft's order with the prices and totals the reviewer approved; the same
    /// draft always yields the same order. Returns its id and code.
    pub async fn create_order(
        &self,
        draft: &DraftRecord,
        user: Option<&str>,
        reference: &str,
    ) -> Result<(Uuid, String), CallError> {
        let request = order_request(draft, reference);
        let order = self
            .caller
            .call("create order", || {
                let mut client = self.client.clone();
                let request = self.caller.request(draft.tenant_id, user, request.clone());
                async move { client.create_order(request).await.map(|r| r.into_inner()) }
            })
            .await?;
        created(order)
    }

    /// Several drafts' orders of one tenant in one call (CreateOrders): `(draft, user,
    /// reference)` per entry, one result per entry in order.
    pub async fn create_orders(
        &self,
        tenant_id: Uuid,
        entries: &[(&DraftRecord, Option<&str>, &str)],
    ) -> Result<Vec<Result<(Uuid, String), CallError>>, CallError> {
        let request = pb::CreateOrdersRequest {
            entries: entries
                .iter()
                .map(|(draft, user, reference)| pb::CreateOrdersEntry {
                    order: Some(order_request(draft, reference)),
                    on_behalf_of: user.unwrap_or_default().to_string(),
                })
                .collect(),
        };
        let answer = self
            .caller
            .call("create orders", || {
                let mut client = self.client.clone();
                let request = self.caller.request(tenant_id, None, request.clone());
                async move { client.create_orders(request).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(self
            .caller
            .entry_results(
                entries.len(),
                answer.results.into_iter().map(|result| match result.outcome {
                    Some(pb::create_orders_result::Outcome::Order(order)) => Ok(order),
                    Some(pb::create_orders_result::Outcome::Failure(failure)) => Err(failure.to_status()),
                    None => Err(tonic::Status::unavailable("an entry without an outcome")),
                }),
            )
            .into_iter()
            .map(|result| result.and_then(created))
            .collect())
    }
}

fn created(order: pb::Order) -> Result<(Uuid, String), CallError> {
    let id = order.id.parse().map_err(|_| CallError::Refused {
        dependency: "order",
        code: tonic::Code::Internal,
        message: "order service returned a bad id".into(),
    })?;
    Ok((id, order.code))
}

/// The draft's order with the prices and totals the reviewer approved.
fn order_request(draft: &DraftRecord, reference: &str) -> pb::CreateOrderRequest {
    let customer = &draft.customer;
    pb::CreateOrderRequest {
        idempotency_key: draft.id.to_string(),
        items: draft
            .items
            .iter()
            .map(|item| pb::OrderItem {
                sku: item.sku.clone().unwrap_or_default(),
                name: item.name.clone(),
                unit_price: item.unit_price.map(money),
                quantity: item.quantity,
                line_total: None,
            })
            .collect(),
        discount: Some(money(draft.totals.discount)),
        tax: Some(money(draft.totals.tax)),
        shipping: Some(money(draft.totals.shipping)),
        customer: Some(pb::Customer {
            name: customer.name.clone(),
            phone_e164: customer.phone_e164.clone().unwrap_or_default(),
            email: String::new(),
            channel: customer.channel.clone(),
            channel_customer_id: customer.channel_customer_id.clone().unwrap_or_default(),
        }),
        shipping_address: draft.shipping_address.as_ref().map(|a| pb::Address {
            recipient_name: a.recipient_name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            region: a.region.clone(),
            postal_code: a.postal_code.clone(),
            country_code: a.country_code.clone(),
            phone_e164: a.phone_e164.clone().unwrap_or_default(),
        }),
        notes: draft.notes.clone(),
        reservation_reference: reference.to_string(),
        currency: draft.currency.code().to_string(),
    }
}
