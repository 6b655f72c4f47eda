//! `orderflow.order.v1.OrderService`.

use events::order::OrderSource;
use proto::common::v1::{EntryFailure, MAX_BATCH_ENTRIES, answer_entries};
use proto::order::v1 as pb;
use proto::order::v1::order_service_server::OrderService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::grpc_convert::*;
use crate::commits::{Commits, CreateJob};
use crate::domain::lifecycle::Status as OrderStatus;
use crate::domain::payments::PaymentStatus;
use crate::domain::totals::{self, LineInput};
use crate::outbound::orders::{self, Actor, ChangeSource, Edit, NewOrder, PaymentKind};
use crate::outbound::queries::{self, Cursor, Filter, Sort};
use crate::outbound::transitions::MoveRequest;
use crate::outbound::{DbError, settings};

/// A draft's order as CreateOrder carries it, checked: the draft's prices and totals, recomputed.
fn draft_order(tenant_id: Uuid, body: pb::CreateOrderRequest) -> Result<NewOrder, Status> {
    let key = body.idempotency_key.trim().to_string();
    if key.is_empty() || key.len() > 200 {
        return Err(Status::invalid_argument("idempotency_key (the draft id) is required"));
    }
    let currency: money::Currency =
        body.currency.parse().map_err(|_| Status::invalid_argument("currency must be an ISO 4217 code"))?;
    let items = body
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            if item.unit_price.is_none() {
                return Err(Status::invalid_argument(format!("items[{index}].unit_price is required")));
            }
            let unit_price = money_from(&format!("items[{index}].unit_price"), item.unit_price.as_ref(), currency)?;
            if item.sku.trim().is_empty() || item.name.trim().is_empty() {
                return Err(Status::invalid_argument(format!("items[{index}] needs a sku and a name")));
            }
            Ok(LineInput {
                sku: Some(item.sku.trim().to_string()),
                name: item.name.trim().to_string(),
                unit_price,
                quantity: item.quantity,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let discount = money_from("discount", body.discount.as_ref(), currency)?;
    let tax = money_from("tax", body.tax.as_ref(), currency)?;
    let shipping = money_from("shipping", body.shipping.as_ref(), currency)?;
    let (lines, totals) = totals::compute(currency, &items, discount, tax, shipping)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(NewOrder {
        tenant_id,
        source: OrderSource::Draft,
        source_id: key.clone(),
        reservation_reference: body.reservation_reference.trim().to_string(),
        reservation_held: !body.reservation_reference.trim().is_empty(),
        lines,
        totals,
        customer: customer_from(body.customer)?,
        shipping_address: address_from(body.shipping_address)?,
        notes: body.notes.trim().to_string(),
        attention: Vec::new(),
        status: OrderStatus::PendingPayment,
        payment_status: PaymentStatus::Pending,
        platform_update_time: None,
    })
}

pub struct OrderApi {
    pub pool: sqlx::PgPool,
    pub namespace: bus::Namespace,
    /// CreateOrder and status changes are committed in batches.
    pub commits: Commits,
}

fn actor_of(principal: &auth::Principal) -> Actor {
    let (user, service) = principal.actor();
    Actor {
        user: user.map(str::to_string),
        service: service.map(str::to_string),
        source: ChangeSource::User,
        tracking_number: None,
        shipping_provider_id: None,
    }
}

fn caller<T>(request: &Request<T>, min: auth::Role) -> Result<(Uuid, Actor), Status> {
    let principal = auth::grpc::principal(request)?;
    Ok((principal.tenant_with(min)?, actor_of(principal)))
}

/// The gRPC code's canonical name, as the proto promises (`FAILED_PRECONDITION`).
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn sql(err: sqlx::Error) -> Status {
    db_status(&DbError::from(err))
}

/// Moving an order forward needs an agent; cancelling (and returns) a manager.
fn role_for(to: OrderStatus) -> auth::Role {
    match to {
        OrderStatus::Cancelled | OrderStatus::Returned => auth::Role::Manager,
        _ => auth::Role::Agent,
    }
}

fn filter_from(filter: Option<pb::OrderFilter>) -> Result<Filter, Status> {
    let filter = filter.unwrap_or_default();
    let source = match pb::OrderSource::try_from(filter.source) {
        Ok(pb::OrderSource::Unspecified) => None,
        Ok(pb::OrderSource::Draft) => Some(OrderSource::Draft),
        Ok(pb::OrderSource::TiktokShop) => Some(OrderSource::TiktokShop),
        Err(_) => return Err(Status::invalid_argument("unknown source")),
    };
    if filter.search.len() > 200 {
        return Err(Status::invalid_argument("search is longer than 200 characters"));
    }
    Ok(Filter {
        statuses: filter.statuses.into_iter().map(status_from).collect::<Result<_, _>>()?,
        payment_statuses: filter.payment_statuses.into_iter().map(payment_status_from).collect::<Result<_, _>>()?,
        source,
        created_from: time_from(filter.created_from.as_ref())?,
        created_to: time_from(filter.created_to.as_ref())?,
        search: Some(filter.search).filter(|s| !s.trim().is_empty()),
    })
}

impl OrderApi {
    async fn full(&self, conn: &mut sqlx::PgConnection, order: orders::OrderRecord) -> Result<pb::Order, Status> {
        let history = orders::history_of(conn, order.id).await.map_err(|e| db_status(&e))?;
        let payments = orders::payments_of(conn, order.id).await.map_err(|e| db_status(&e))?;
        let sync = orders::sync_state(conn, order.id).await.map_err(|e| db_status(&e))?;
        let mut out = order_to(order, history, payments);
        out.sync = sync.map(|s| pb::TiktokSync {
            status: s.status,
            attempts: s.attempts,
            last_error: s.last_error.unwrap_or_default(),
            updated_at: Some(timestamp(s.updated_at)),
        });
        Ok(out)
    }

    async fn move_order(&self, request: MoveRequest) -> Result<pb::Order, Status> {
        let order = self.commits.transition(request).await.map_err(|e| change_status(&e))?;
        Ok(order_to(order, Vec::new(), Vec::new()))
    }
}

/// A status change as the API asks for it; the request's trace context goes with it.
fn move_request(
    tenant_id: Uuid,
    actor: Actor,
    order: String,
    to: OrderStatus,
    reason: Option<&str>,
    expected_version: i64,
) -> MoveRequest {
    MoveRequest {
        tenant_id,
        order,
        to,
        reason: reason.map(str::to_string),
        expected_version,
        actor,
        trace: Some(telemetry::propagation::current_headers().into_iter().collect()),
    }
}

#[tonic::async_trait]
impl OrderService for OrderApi {
    async fn create_order(&self, request: Request<pb::CreateOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let principal = auth::grpc::principal(&request)?;
        let tenant_id = principal.service()?;
        let actor = actor_of(principal);
        let new = draft_order(tenant_id, request.into_inner())?;
        let trace = telemetry::propagation::current_headers().into_iter().collect();
        let created = self.commits.create(CreateJob { new, actor, trace }).await.map_err(|e| db_status(&e))?;
        if created.new {
            tracing::info!(order_id = %created.order.id, code = %created.order.code, "order created from draft");
        }
        Ok(Response::new(order_to(created.order, Vec::new(), Vec::new())))
    }

    async fn create_orders(
        &self,
        request: Request<pb::CreateOrdersRequest>,
    ) -> Result<Response<pb::CreateOrdersResponse>, Status> {
        let principal = auth::grpc::principal(&request)?.clone();
        let tenant_id = principal.service()?;
        let entries = request.into_inner().entries;
        if entries.is_empty() || entries.len() > MAX_BATCH_ENTRIES {
            return Err(Status::invalid_argument(format!("entries must number 1 to {MAX_BATCH_ENTRIES}")));
        }
        let trace: std::collections::BTreeMap<String, String> =
            telemetry::propagation::current_headers().into_iter().collect();
        // Each entry as CreateOrder would take it; the valid ones are created together.
        let checked: Vec<Result<CreateJob, Status>> = entries
            .into_iter()
            .map(|entry| {
                let actor = actor_of(&principal.for_entry(&entry.on_behalf_of)?);
                let order = entry.order.ok_or_else(|| Status::invalid_argument("entry without order"))?;
                Ok(CreateJob { new: draft_order(tenant_id, order)?, actor, trace: trace.clone() })
            })
            .collect();
        let outcomes = answer_entries(checked, |jobs| async {
            let created = self.commits.create_all(jobs).await;
            created
                .into_iter()
                .map(|created| {
                    let created = created.map_err(|e| db_status(&e))?;
                    if created.new {
                        tracing::info!(order_id = %created.order.id, code = %created.order.code, "order created from draft");
                    }
                    Ok(order_to(created.order, Vec::new(), Vec::new()))
                })
                .collect()
        })
        .await;
        let results = outcomes
            .into_iter()
            .map(|outcome| pb::CreateOrdersResult {
                outcome: Some(match outcome {
                    Ok(order) => pb::create_orders_result::Outcome::Order(order),
                    Err(status) => pb::create_orders_result::Outcome::Failure(EntryFailure::from_status(&status)),
                }),
            })
            .collect();
        Ok(Response::new(pb::CreateOrdersResponse { results }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let id = request.get_ref().id.trim().to_string();
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let order = orders::get(&mut conn, tenant_id, &id, false).await.map_err(|e| db_status(&e))?;
        let order = order.ok_or_else(|| Status::not_found("order not found"))?;
        Ok(Response::new(self.full(&mut conn, order).await?))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let body = request.into_inner();
        let filter = filter_from(body.filter)?;
        let sort = match pb::SortBy::try_from(body.sort) {
            Ok(pb::SortBy::Unspecified | pb::SortBy::CreatedDesc) => Sort::CreatedDesc,
            Ok(pb::SortBy::CreatedAsc) => Sort::CreatedAsc,
            Ok(pb::SortBy::TotalDesc) => Sort::TotalDesc,
            Ok(pb::SortBy::TotalAsc) => Sort::TotalAsc,
            Err(_) => return Err(Status::invalid_argument("unknown sort")),
        };
        let cursor = if body.page_token.is_empty() {
            None
        } else {
            let cursor = Cursor::decode(&body.page_token).ok_or_else(|| Status::invalid_argument("bad page_token"))?;
            let matches = matches!(
                (&cursor, sort),
                (Cursor::Created(..), Sort::CreatedDesc | Sort::CreatedAsc)
                    | (Cursor::Total(..), Sort::TotalDesc | Sort::TotalAsc)
            );
            if !matches {
                return Err(Status::invalid_argument("page_token belongs to another sort"));
            }
            Some(cursor)
        };
        let limit = if body.page_size <= 0 { 50 } else { body.page_size.min(500) } as i64;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let (orders, next) = queries::list(&mut conn, tenant_id, &filter, sort, limit, cursor.as_ref())
            .await
            .map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(|o| order_to(o, Vec::new(), Vec::new())).collect(),
            next_page_token: next.map(|c| c.encode()).unwrap_or_default(),
        }))
    }

    async fn order_summary(
        &self,
        request: Request<pb::OrderSummaryRequest>,
    ) -> Result<Response<pb::OrderSummaryResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let filter = filter_from(request.into_inner().filter)?;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let summary = queries::summary(&mut conn, tenant_id, &filter).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::OrderSummaryResponse {
            count: summary.count,
            totals: summary
                .totals
                .into_iter()
                .map(|(currency, amount_minor)| proto::common::v1::Money { amount_minor, currency })
                .collect(),
            by_status: summary
                .by_status
                .into_iter()
                .map(|(s, count)| pb::StatusCount { status: status_to(s) as i32, count })
                .collect(),
        }))
    }

    async fn record_payment(&self, request: Request<pb::RecordPaymentRequest>) -> Result<Response<pb::Order>, Status> {
        let body_kind = request.get_ref().kind;
        let kind = match pb::PaymentKind::try_from(body_kind) {
            Ok(pb::PaymentKind::Payment) => PaymentKind::Payment,
            Ok(pb::PaymentKind::Refund) => PaymentKind::Refund,
            Ok(pb::PaymentKind::Unspecified) | Err(_) => return Err(Status::invalid_argument("kind is required")),
        };
        // Refunds give money back: a manager's call.
        let min = if kind == PaymentKind::Refund { auth::Role::Manager } else { auth::Role::Agent };
        let (tenant_id, actor) = caller(&request, min)?;
        let body = request.into_inner();
        let amount = body.amount.ok_or_else(|| Status::invalid_argument("amount is required"))?;
        let currency: money::Currency =
            amount.currency.parse().map_err(|_| Status::invalid_argument("amount.currency is invalid"))?;
        if amount.amount_minor <= 0 {
            return Err(Status::invalid_argument("amount must be positive"));
        }
        let amount = money::Money::new(amount.amount_minor, currency);
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let order = orders::record_payment(
            &mut tx,
            &self.namespace,
            tenant_id,
            &body.order_id,
            kind,
            amount,
            body.method.trim(),
            body.reference.trim(),
            &actor,
        )
        .await
        .map_err(|e| change_status(&e))?;
        tx.commit().await.map_err(sql)?;
        Ok(Response::new(order_to(order, Vec::new(), Vec::new())))
    }

    async fn update_order_status(
        &self,
        request: Request<pb::UpdateOrderStatusRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let to = status_from(request.get_ref().status)?;
        let (tenant_id, mut actor) = caller(&request, role_for(to))?;
        let body = request.into_inner();
        actor.tracking_number = Some(body.tracking_number.trim().to_string()).filter(|t| !t.is_empty());
        actor.shipping_provider_id = Some(body.shipping_provider_id.trim().to_string()).filter(|t| !t.is_empty());
        let reason = Some(body.reason.trim()).filter(|r| !r.is_empty());
        let request = move_request(tenant_id, actor, body.order_id, to, reason, body.expected_version);
        Ok(Response::new(self.move_order(request).await?))
    }

    async fn bulk_update_order_status(
        &self,
        request: Request<pb::BulkUpdateOrderStatusRequest>,
    ) -> Result<Response<pb::BulkUpdateOrderStatusResponse>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        let to = status_from(body.status)?;
        if body.order_ids.is_empty() || body.order_ids.len() > 500 {
            return Err(Status::invalid_argument("between 1 and 500 order ids"));
        }
        let reason = Some(body.reason.trim()).filter(|r| !r.is_empty());
        // One transaction for the whole list; each order succeeds or fails on its own.
        let requests =
            body.order_ids.iter().map(|id| move_request(tenant_id, actor.clone(), id.clone(), to, reason, 0)).collect();
        let outcomes = self.commits.transition_all(requests).await;
        let results = body
            .order_ids
            .into_iter()
            .zip(outcomes)
            .map(|(order_id, outcome)| match outcome {
                Ok(order) => pb::BulkResult {
                    order_id,
                    ok: true,
                    order: Some(order_to(order, Vec::new(), Vec::new())),
                    ..Default::default()
                },
                Err(err) => {
                    let status = change_status(&err);
                    pb::BulkResult {
                        order_id,
                        ok: false,
                        error_code: code_name(status.code()).to_string(),
                        error_message: status.message().to_string(),
                        order: None,
                    }
                }
            })
            .collect();
        Ok(Response::new(pb::BulkUpdateOrderStatusResponse { results }))
    }

    async fn cancel_order(&self, request: Request<pb::CancelOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        let reason = body.reason.trim();
        if reason.is_empty() {
            return Err(Status::invalid_argument("a reason is required to cancel"));
        }
        let request =
            move_request(tenant_id, actor, body.order_id, OrderStatus::Cancelled, Some(reason), body.expected_version);
        Ok(Response::new(self.move_order(request).await?))
    }

    async fn update_order(&self, request: Request<pb::UpdateOrderRequest>) -> Result<Response<pb::Order>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let tags = if body.set_tags {
            let tags: Vec<String> =
                body.tags.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()).collect();
            if tags.len() > 20 || tags.iter().any(|t| t.len() > 40) {
                return Err(Status::invalid_argument("at most 20 tags of at most 40 characters"));
            }
            Some(tags)
        } else {
            None
        };
        if body.notes.as_ref().is_some_and(|n| n.len() > 4000) {
            return Err(Status::invalid_argument("notes are longer than 4,000 characters"));
        }
        let edit = Edit {
            notes: body.notes.map(|n| n.trim().to_string()),
            tags,
            shipping_address: address_from(body.shipping_address)?,
        };
        let mut tx = self.pool.begin().await.map_err(sql)?;
        let order = orders::edit(&mut tx, tenant_id, &body.order_id, body.expected_version, edit, &actor)
            .await
            .map_err(|e| change_status(&e))?;
        tx.commit().await.map_err(sql)?;
        Ok(Response::new(order_to(order, Vec::new(), Vec::new())))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::OrderSettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        let s = settings::get(&mut conn, tenant_id).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::OrderSettings {
            payment_window_minutes: s.payment_window_minutes,
            currency: s.currency.unwrap_or_default(),
            time_zone: s.time_zone,
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::OrderSettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Admin)?;
        let body = request.into_inner().settings.ok_or_else(|| Status::invalid_argument("settings are required"))?;
        if body.payment_window_minutes < 0 || body.payment_window_minutes > 60 * 24 * 60 {
            return Err(Status::invalid_argument("payment_window_minutes must be between 0 and 86,400"));
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
        let time_zone =
            if body.time_zone.trim().is_empty() { "UTC".to_string() } else { body.time_zone.trim().to_string() };
        let s = settings::Settings { payment_window_minutes: body.payment_window_minutes, currency, time_zone };
        let mut conn = self.pool.acquire().await.map_err(sql)?;
        settings::put(&mut conn, tenant_id, &s).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::OrderSettings {
            payment_window_minutes: s.payment_window_minutes,
            currency: s.currency.unwrap_or_default(),
            time_zone: s.time_zone,
        }))
    }
}
