//! `orderflow.draft.v1.DraftService`: the review API.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bus::{Envelope, Namespace};
use events::draft::{DraftRejected, DraftUpdated};
use proto::draft::v1 as pb;
use proto::draft::v1::draft_service_server::DraftService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::grpc_convert::*;
use crate::approve::Approver;
use crate::catalog_cache::CatalogCache;
use crate::domain::draft::{self, Item, Status as DraftStatus};
use crate::domain::matcher::CatalogSnapshot;
use crate::domain::parser::OrderParser;
use crate::outbound::drafts::{self, Filter};
use crate::outbound::{DbError, settings};
use crate::propose::{self, Proposal};

pub struct DraftApi {
    pub pool: sqlx::PgPool,
    pub namespace: Namespace,
    pub catalog: CatalogCache,
    pub parser: Arc<dyn OrderParser>,
    pub approver: Approver,
}

fn caller<T>(request: &Request<T>, min: auth::Role) -> Result<(Uuid, String), Status> {
    let principal = auth::grpc::principal(request)?;
    Ok((principal.tenant_with(min)?, principal.subject.clone()))
}

fn sql(err: sqlx::Error) -> Status {
    db_status(&DbError::from(err))
}

fn draft_id(value: &str) -> Result<Uuid, Status> {
    // An id that is not ours is not found, whatever its shape.
    value.trim().parse().map_err(|_| Status::not_found("draft not found"))
}

/// Items a person entered: by SKU (priced from the catalog) or as text to be matched.
fn items_from(
    inputs: &[pb::ItemInput],
    snapshot: &CatalogSnapshot,
    parser: &dyn OrderParser,
) -> Result<Vec<Item>, Status> {
    let mut items = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        if input.quantity <= 0 || input.quantity > 100_000 {
            return Err(Status::invalid_argument(format!("items[{index}]: quantity must be between 1 and 100,000")));
        }
        let sku = input.sku.trim();
        if !sku.is_empty() {
            let entry = snapshot
                .get(sku)
                .ok_or_else(|| Status::invalid_argument(format!("items[{index}]: sku {sku} is not in the catalog")))?;
            items.push(Item {
                original_text: input.text.trim().to_string(),
                sku: Some(entry.sku.clone()),
                name: entry.name.clone(),
                quantity: input.quantity,
                unit_price: Some(entry.price),
                message_price: None,
                confidence: 1.0,
            });
        } else if !input.text.trim().is_empty() {
            let mut parsed = parser.parse(input.text.trim()).lines;
            let mut line = parsed
                .pop()
                .ok_or_else(|| Status::invalid_argument(format!("items[{index}]: no product in the text")))?;
            line.quantity = input.quantity;
            items.push(snapshot.item_for(&line));
        } else {
            return Err(Status::invalid_argument(format!("items[{index}] needs a sku or a text")));
        }
    }
    Ok(items)
}

impl DraftApi {
    async fn currency(
        &self,
        conn: &mut sqlx::PgConnection,
        tenant_id: Uuid,
        items: &[Item],
    ) -> Result<money::Currency, Status> {
        let settings = settings::get(conn, tenant_id).await.map_err(|e| db_status(&e))?;
        if let Some(code) = settings.currency.as_deref().and_then(|c| c.parse().ok()) {
            return Ok(code);
        }
        items.iter().find_map(|i| i.unit_price.map(|p| p.currency)).ok_or_else(|| {
            Status::failed_precondition("set the tenant's currency (UpdateSettings) or add a catalog item")
        })
    }
}

#[tonic::async_trait]
impl DraftService for DraftApi {
    async fn list_drafts(
        &self,
        request: Request<pb::ListDraftsRequest>,
    ) -> Result<Response<pb::ListDraftsResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let body = request.into_inner();
        let filter = Filter {
            statuses: body.statuses.into_iter().map(status_from).collect::<Result<_, _>>()?,
            source: Some(body.source.trim().to_string()).filter(|s| !s.is_empty()),
            customer: Some(body.customer.trim().to_string()).filter(|s| !s.is_empty()),
            max_age_minutes: Some(body.max_age_minutes).filter(|m| *m > 0),
        };
        let after = if body.page_token.is_empty() {
            None
        } else {
            let decoded = URL_SAFE_NO_PAD.decode(&body.page_token).ok().and_then(|b| String::from_utf8(b).ok());
            let parsed = decoded.and_then(|text| {
                let (nanos, id) = text.split_once(':')?;
                Some((
                    time::OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?,
                    id.parse::<Uuid>().ok()?,
                ))
            });
            Some(parsed.ok_or_else(|| Status::invalid_argument("bad page_token"))?)
        };
        let limit = if body.page_size <= 0 { 50 } else { body.page_size.min(200) } as i64;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let mut found =
            drafts::list(&mut conn, tenant_id, &filter, limit + 1, after).await.map_err(|e| db_status(&e))?;
        let next = if found.len() as i64 > limit {
            found.truncate(limit as usize);
            found.last().map(|d| URL_SAFE_NO_PAD.encode(format!("{}:{}", d.created_at.unix_timestamp_nanos(), d.id)))
        } else {
            None
        };
        Ok(Response::new(pb::ListDraftsResponse {
            drafts: found.into_iter().map(draft_to).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_draft(&self, request: Request<pb::GetDraftRequest>) -> Result<Response<pb::Draft>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let id = draft_id(&request.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let found = drafts::get(&mut conn, tenant_id, id, false).await.map_err(|e| db_status(&e))?;
        found.map(|d| Response::new(draft_to(d))).ok_or_else(|| Status::not_found("draft not found"))
    }

    async fn create_draft(&self, request: Request<pb::CreateDraftRequest>) -> Result<Response<pb::Draft>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let snapshot = self.catalog.snapshot(tenant_id).await.map_err(|e| call_status(&e))?;
        let mut items = items_from(&body.items, &snapshot, self.parser.as_ref())?;
        if !body.text.trim().is_empty() {
            items.extend(snapshot.items_for(&self.parser.parse(&body.text).lines));
        }
        if items.is_empty() {
            return Err(Status::invalid_argument("a draft needs items or a text naming them"));
        }
        let customer = customer_from(body.customer, "manual")?;
        if customer.name.is_empty() {
            return Err(Status::invalid_argument("customer.name is required"));
        }
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let currency = self.currency(&mut tx, tenant_id, &items).await?;
        let settings = settings::get(&mut tx, tenant_id).await.map_err(|e| db_status(&e))?;
        let proposal = Proposal {
            tenant_id,
            source: "manual".into(),
            customer,
            customer_key: None,
            items,
            shipping_address: address_from(body.shipping_address)?,
            notes: body.notes.trim().to_string(),
            currency,
            cause: None,
        };
        let outcome =
            propose::propose(&mut tx, &self.namespace, &settings, proposal).await.map_err(|e| db_status(&e))?;
        tx.commit().await.map_err(sql)?;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let created = drafts::get(&mut conn, tenant_id, outcome.draft().id, false).await.map_err(|e| db_status(&e))?;
        created.map(|d| Response::new(draft_to(d))).ok_or_else(|| Status::internal("internal error"))
    }

    async fn update_draft(&self, request: Request<pb::UpdateDraftRequest>) -> Result<Response<pb::Draft>, Status> {
        let (tenant_id, user) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let id = draft_id(&body.id)?;
        let snapshot = if body.set_items {
            Some(self.catalog.snapshot(tenant_id).await.map_err(|e| call_status(&e))?)
        } else {
            None
        };
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let mut current = drafts::get(&mut tx, tenant_id, id, true)
            .await
            .map_err(|e| db_status(&e))?
            .ok_or_else(|| Status::not_found("draft not found"))?;
        if current.status != DraftStatus::PendingReview {
            return Err(Status::failed_precondition(format!(
                "the draft is {}; only drafts pending review can be edited",
                current.status.as_str()
            )));
        }
        if body.expected_version != current.version {
            return Err(Status::aborted(format!(
                "the draft changed since version {} (now {})",
                body.expected_version, current.version
            )));
        }
        if let Some(snapshot) = &snapshot {
            current.items = items_from(&body.items, snapshot, self.parser.as_ref())?;
            if current.items.is_empty() {
                return Err(Status::invalid_argument("a draft needs at least one item; reject it instead"));
            }
        }
        if body.customer.is_some() {
            current.customer = customer_from(body.customer, &current.customer.channel)?;
        }
        if body.shipping_address.is_some() {
            current.shipping_address = address_from(body.shipping_address)?;
        }
        if let Some(notes) = body.notes {
            current.notes = notes.trim().to_string();
        }
        let currency = current.currency;
        // Tax and shipping are kept unless the edit sets them: an edit never drops them.
        let discount = money_from("discount", body.discount.as_ref(), currency)?.unwrap_or(current.totals.discount);
        let tax = money_from("tax", body.tax.as_ref(), currency)?.unwrap_or(current.totals.tax);
        let shipping = money_from("shipping", body.shipping.as_ref(), currency)?.unwrap_or(current.totals.shipping);
        current.totals = draft::totals(currency, &current.items, discount, tax, shipping)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        drafts::save(&mut tx, &mut current).await.map_err(|e| db_status(&e))?;
        let event = DraftUpdated {
            draft_id: id.to_string(),
            version: current.version,
            cause: format!("edited by {user}"),
            total_minor: current.totals.total.amount_minor,
        };
        bus::outbox::enqueue(&mut tx, &self.namespace, Envelope::new(tenant_id, format!("draft:{id}"), event, None))
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
        tx.commit().await.map_err(sql)?;
        Ok(Response::new(draft_to(current)))
    }

    async fn approve_draft(
        &self,
        request: Request<pb::ApproveDraftRequest>,
    ) -> Result<Response<pb::ApproveDraftResponse>, Status> {
        let (tenant_id, user) = caller(&request, auth::Role::Agent)?;
        let id = draft_id(&request.get_ref().id)?;
        let (approved, draft) = self.approver.approve(tenant_id, id, &user).await.map_err(|e| approve_status(&e))?;
        Ok(Response::new(pb::ApproveDraftResponse {
            order_id: approved.order_id.to_string(),
            order_code: approved.order_code,
            draft: Some(draft_to(draft)),
        }))
    }

    async fn reject_draft(&self, request: Request<pb::RejectDraftRequest>) -> Result<Response<pb::Draft>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let id = draft_id(&body.id)?;
        let reason = body.reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(Status::invalid_argument("a reason of at most 500 characters is required"));
        }
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let mut current = drafts::get(&mut tx, tenant_id, id, true)
            .await
            .map_err(|e| db_status(&e))?
            .ok_or_else(|| Status::not_found("draft not found"))?;
        match current.status {
            DraftStatus::PendingReview => {}
            DraftStatus::Rejected => return Ok(Response::new(draft_to(current))),
            other => {
                return Err(Status::failed_precondition(format!(
                    "the draft is {}; it cannot be rejected",
                    other.as_str()
                )));
            }
        }
        drafts::reject(&mut tx, id, reason).await.map_err(|e| db_status(&e))?;
        let event = DraftRejected { draft_id: id.to_string(), reason: reason.to_string() };
        bus::outbox::enqueue(&mut tx, &self.namespace, Envelope::new(tenant_id, format!("draft:{id}"), event, None))
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
        tx.commit().await.map_err(sql)?;
        current.status = DraftStatus::Rejected;
        current.rejected_reason = Some(reason.to_string());
        current.version += 1;
        Ok(Response::new(draft_to(current)))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::DraftSettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let s = settings::get(&mut conn, tenant_id).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::DraftSettings {
            ttl_minutes: s.ttl_minutes,
            auto_approve: s.auto_approve,
            trusted_customers: s.trusted_customers,
            currency: s.currency.unwrap_or_default(),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::DraftSettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Admin)?;
        let body = request.into_inner().settings.ok_or_else(|| Status::invalid_argument("settings are required"))?;
        if body.ttl_minutes <= 0 || body.ttl_minutes > 60 * 24 * 30 {
            return Err(Status::invalid_argument("ttl_minutes must be between 1 and 43,200"));
        }
        let currency = match body.currency.trim() {
            "" => None,
            code => Some(
                code.parse::<money::Currency>()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?
                    .code()
                    .to_string(),
            ),
        };
        let s = settings::Settings {
            ttl_minutes: body.ttl_minutes,
            auto_approve: body.auto_approve,
            trusted_customers: body
                .trusted_customers
                .into_iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            currency,
        };
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        settings::put(&mut conn, tenant_id, &s).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::DraftSettings {
            ttl_minutes: s.ttl_minutes,
            auto_approve: s.auto_approve,
            trusted_customers: s.trusted_customers,
            currency: s.currency.unwrap_or_default(),
        }))
    }
}
