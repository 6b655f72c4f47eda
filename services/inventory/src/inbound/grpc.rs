//! `orderflow.inventory.v1.InventoryService`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::common::v1::{EntryFailure, MAX_BATCH_ENTRIES, answer_entries};
use proto::inventory::v1 as pb;
use proto::inventory::v1::inventory_service_server::InventoryService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::grpc_convert::*;
use crate::domain::catalog::{self, Sku};
use crate::domain::reservations::{Status as ReservationStatus, StockKey};
use crate::outbound::stock::{self, Adjustment, ReserveJob};
use crate::outbound::{DbError, catalog as catalog_store, settings};
use crate::reserve::Reserver;
use crate::search::SearchCache;

pub struct InventoryApi {
    pub pool: sqlx::PgPool,
    pub namespace: bus::Namespace,
    pub reserver: Reserver,
    pub search: SearchCache,
}

/// Who is acting, for the ledger: the user, and the service when one acts for them.
fn actor(principal: &auth::Principal) -> String {
    match principal.actor() {
        (Some(user), Some(service)) => format!("{user} via {service}"),
        (Some(user), None) => user.to_string(),
        (None, Some(service)) => service.to_string(),
        (None, None) => "unknown".to_string(),
    }
}

fn caller<T>(request: &Request<T>, min: auth::Role) -> Result<(Uuid, String), Status> {
    let principal = auth::grpc::principal(request)?;
    let tenant = principal.tenant_with(min)?;
    Ok((tenant, actor(principal)))
}

impl InventoryApi {
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, Status> {
        self.pool.acquire().await.map_err(|e| db_status(&DbError::from(e)))
    }

    async fn upsert_rows(
        &self,
        tenant_id: Uuid,
        rows: Vec<(usize, catalog::RawItem)>,
        mut errors: Vec<catalog::RowError>,
        skip_invalid: bool,
    ) -> Result<pb::UpsertCatalogResponse, Status> {
        let line_numbers: Vec<(String, usize)> =
            rows.iter().map(|(line, raw)| (raw.sku.trim().to_string(), *line)).collect();
        let mut tx = self.pool.begin().await.map_err(|e| db_status(&DbError::from(e)))?;
        let settings = settings::get(&mut tx, tenant_id).await.map_err(|e| db_status(&e))?;
        let (mut valid, invalid) = catalog::validate_all(rows, settings.currency);
        errors.extend(invalid);
        // A retailer id already used by another SKU of the tenant is a row error too.
        let wanted: Vec<String> = valid.iter().filter_map(|e| e.retailer_id.clone()).collect();
        if !wanted.is_empty() {
            let taken: Vec<(String, String)> = sqlx::query_as(
                "SELECT retailer_id, sku FROM catalog_items WHERE tenant_id = $1 AND retailer_id = ANY($2)",
            )
            .bind(tenant_id)
            .bind(&wanted)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db_status(&DbError::from(e)))?;
            let lines: std::collections::HashMap<&str, usize> =
                line_numbers.iter().map(|(sku, line)| (sku.as_str(), *line)).collect();
            valid.retain(|entry| {
                let clash = taken
                    .iter()
                    .find(|(retailer, sku)| Some(retailer) == entry.retailer_id.as_ref() && sku != entry.sku.as_str());
                if let Some((retailer, owner)) = clash {
                    errors.push(catalog::RowError {
                        line: lines.get(entry.sku.as_str()).copied().unwrap_or(0),
                        sku: entry.sku.as_str().to_string(),
                        reason: format!("retailer_id {retailer} is already used by {owner}"),
                    });
                    false
                } else {
                    true
                }
            });
        }
        errors.sort_by_key(|e| e.line);
        if !errors.is_empty() && !skip_invalid {
            // Nothing is written; the caller gets every bad row with its reason.
            return Ok(pb::UpsertCatalogResponse {
                upserted: 0,
                errors: errors.into_iter().map(row_error_to).collect(),
                catalog_version: catalog_store::version(&mut tx, tenant_id).await.map_err(|e| db_status(&e))?,
            });
        }
        let version =
            catalog_store::upsert(&mut tx, &self.namespace, tenant_id, &valid).await.map_err(|e| db_status(&e))?;
        tx.commit().await.map_err(|e| db_status(&DbError::from(e)))?;
        Ok(pb::UpsertCatalogResponse {
            upserted: i32::try_from(valid.len()).unwrap_or(i32::MAX),
            errors: errors.into_iter().map(row_error_to).collect(),
            catalog_version: version,
        })
    }

    async fn change(
        &self,
        tenant_id: Uuid,
        actor: &str,
        reference: &str,
        wanted: ReservationStatus,
        reason: Option<&str>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let reference = super::grpc_convert::reference(reference)?;
        let mut tx = self.pool.begin().await.map_err(|e| db_status(&DbError::from(e)))?;
        let reservation =
            stock::change_reservation(&mut tx, &self.namespace, tenant_id, &reference, wanted, reason, actor)
                .await
                .map_err(|e| change_status(&e))?;
        tx.commit().await.map_err(|e| db_status(&DbError::from(e)))?;
        Ok(Response::new(reservation_to(reservation)))
    }
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    async fn upsert_catalog(
        &self,
        request: Request<pb::UpsertCatalogRequest>,
    ) -> Result<Response<pb::UpsertCatalogResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        if body.items.len() > 10_000 {
            return Err(Status::invalid_argument("at most 10,000 items per call"));
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (index, input) in body.items.into_iter().enumerate() {
            let sku = input.sku.clone();
            match raw_from(input) {
                Ok(raw) => rows.push((index + 1, raw)),
                Err(reason) => errors.push(catalog::RowError { line: index + 1, sku, reason }),
            }
        }
        Ok(Response::new(self.upsert_rows(tenant_id, rows, errors, body.skip_invalid).await?))
    }

    async fn import_catalog_csv(
        &self,
        request: Request<pb::ImportCatalogCsvRequest>,
    ) -> Result<Response<pb::UpsertCatalogResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        let (rows, errors) = catalog::parse_csv(&body.csv).map_err(Status::invalid_argument)?;
        Ok(Response::new(self.upsert_rows(tenant_id, rows, errors, body.skip_invalid).await?))
    }

    async fn get_catalog_item(
        &self,
        request: Request<pb::GetCatalogItemRequest>,
    ) -> Result<Response<pb::CatalogItem>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let sku = Sku::parse(&request.get_ref().sku).map_err(|_| Status::not_found("sku not found"))?;
        let mut conn = self.conn().await?;
        let item = catalog_store::get(&mut conn, tenant_id, &sku).await.map_err(|e| db_status(&e))?;
        item.map(|i| Response::new(item_to(i))).ok_or_else(|| Status::not_found("sku not found"))
    }

    async fn list_catalog(
        &self,
        request: Request<pb::ListCatalogRequest>,
    ) -> Result<Response<pb::ListCatalogResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let body = request.into_inner();
        let limit = if body.page_size <= 0 { 100 } else { body.page_size.min(1000) } as i64;
        let after = if body.page_token.is_empty() {
            None
        } else {
            let bytes =
                URL_SAFE_NO_PAD.decode(&body.page_token).map_err(|_| Status::invalid_argument("bad page_token"))?;
            Some(String::from_utf8(bytes).map_err(|_| Status::invalid_argument("bad page_token"))?)
        };
        let mut conn = self.conn().await?;
        let version = catalog_store::version(&mut conn, tenant_id).await.map_err(|e| db_status(&e))?;
        let items = catalog_store::page(&mut conn, tenant_id, after.as_deref(), limit + 1, body.include_inactive)
            .await
            .map_err(|e| db_status(&e))?;
        let has_more = items.len() as i64 > limit;
        let items: Vec<_> = items.into_iter().take(limit as usize).collect();
        let next_page_token = match (has_more, items.last()) {
            (true, Some(last)) => URL_SAFE_NO_PAD.encode(last.sku.as_bytes()),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListCatalogResponse {
            items: items.into_iter().map(item_to).collect(),
            next_page_token,
            catalog_version: version,
        }))
    }

    async fn search_catalog(
        &self,
        request: Request<pb::SearchCatalogRequest>,
    ) -> Result<Response<pb::SearchCatalogResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let body = request.into_inner();
        if body.query.len() > 500 {
            return Err(Status::invalid_argument("query is longer than 500 characters"));
        }
        let limit = if body.limit <= 0 { 10 } else { body.limit.min(100) } as usize;
        let found = self.search.search(&self.pool, tenant_id, &body.query, limit).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::SearchCatalogResponse {
            matches: found
                .into_iter()
                .map(|(item, score)| pb::SearchMatch { item: Some(item_to(item)), score })
                .collect(),
        }))
    }

    async fn get_stock(&self, request: Request<pb::GetStockRequest>) -> Result<Response<pb::GetStockResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let body = request.into_inner();
        if body.skus.len() > 1000 {
            return Err(Status::invalid_argument("at most 1,000 SKUs per call"));
        }
        let mut conn = self.conn().await?;
        let rows = stock::levels(&mut conn, tenant_id, &body.skus, &location(&body.location))
            .await
            .map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::GetStockResponse { levels: rows.into_iter().map(stock_to).collect() }))
    }

    async fn adjust_stock(&self, request: Request<pb::AdjustStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        let sku = Sku::parse(&body.sku).map_err(Status::invalid_argument)?;
        let (adjustment, reason) = match pb::AdjustmentReason::try_from(body.reason) {
            Ok(pb::AdjustmentReason::Received) if body.delta > 0 => (Adjustment::Delta(body.delta), "received"),
            Ok(pb::AdjustmentReason::Returned) if body.delta > 0 => (Adjustment::Delta(body.delta), "returned"),
            Ok(pb::AdjustmentReason::Damaged) if body.delta < 0 => (Adjustment::Delta(body.delta), "damaged"),
            Ok(pb::AdjustmentReason::Counted) if body.counted_on_hand >= 0 => {
                (Adjustment::Counted(body.counted_on_hand), "counted")
            }
            Ok(pb::AdjustmentReason::Received | pb::AdjustmentReason::Returned) => {
                return Err(Status::invalid_argument("received and returned need a positive delta"));
            }
            Ok(pb::AdjustmentReason::Damaged) => {
                return Err(Status::invalid_argument("damaged needs a negative delta"));
            }
            Ok(pb::AdjustmentReason::Counted) => {
                return Err(Status::invalid_argument("counted_on_hand must not be negative"));
            }
            Ok(pb::AdjustmentReason::Unspecified) | Err(_) => {
                return Err(Status::invalid_argument("reason is required"));
            }
        };
        let key = StockKey { sku: sku.as_str().to_string(), location: location(&body.location) };
        let mut tx = self.pool.begin().await.map_err(|e| db_status(&DbError::from(e)))?;
        let idempotency_key = Some(body.idempotency_key.trim()).filter(|k| !k.is_empty());
        let note = Some(body.note.trim()).filter(|n| !n.is_empty());
        let row =
            stock::adjust(&mut tx, &self.namespace, tenant_id, &key, adjustment, reason, note, idempotency_key, &actor)
                .await
                .map_err(|e| adjust_status(&e))?;
        tx.commit().await.map_err(|e| db_status(&DbError::from(e)))?;
        Ok(Response::new(stock_to(row)))
    }

    async fn set_low_stock_threshold(
        &self,
        request: Request<pb::SetLowStockThresholdRequest>,
    ) -> Result<Response<pb::StockLevel>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Manager)?;
        let body = request.into_inner();
        let sku = Sku::parse(&body.sku).map_err(Status::invalid_argument)?;
        if body.threshold < 0 {
            return Err(Status::invalid_argument("threshold must not be negative"));
        }
        let key = StockKey { sku: sku.as_str().to_string(), location: location(&body.location) };
        let mut tx = self.pool.begin().await.map_err(|e| db_status(&DbError::from(e)))?;
        let row = stock::set_threshold(&mut tx, &self.namespace, tenant_id, &key, body.threshold)
            .await
            .map_err(|e| adjust_status(&e))?;
        tx.commit().await.map_err(|e| db_status(&DbError::from(e)))?;
        Ok(Response::new(stock_to(row)))
    }

    async fn check_availability(
        &self,
        request: Request<pb::AvailabilityRequest>,
    ) -> Result<Response<pb::AvailabilityResponse>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let lines = lines_from(&request.get_ref().items)?;
        let mut conn = self.conn().await?;
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            let rows = stock::levels(&mut conn, tenant_id, std::slice::from_ref(&line.key.sku), &line.key.location)
                .await
                .map_err(|e| db_status(&e))?;
            let available = rows.first().map_or(0, |r| r.on_hand - r.reserved);
            out.push(pb::Availability {
                sku: line.key.sku,
                requested: line.quantity,
                available,
                sufficient: available >= line.quantity,
            });
        }
        Ok(Response::new(pb::AvailabilityResponse { items: out }))
    }

    async fn reserve(&self, request: Request<pb::ReserveRequest>) -> Result<Response<pb::Reservation>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let job =
            ReserveJob { tenant_id, reference: reference(&body.reference)?, lines: lines_from(&body.items)?, actor };
        let outcome =
            self.reserver.reserve(job).await.map_err(|_| Status::unavailable("inventory is shutting down"))?;
        outcome.map(|r| Response::new(reservation_to(r))).map_err(|e| reserve_status(&e))
    }

    async fn reserve_many(
        &self,
        request: Request<pb::ReserveManyRequest>,
    ) -> Result<Response<pb::ReserveManyResponse>, Status> {
        let principal = auth::grpc::principal(&request)?.clone();
        let tenant_id = principal.service()?;
        let entries = request.into_inner().entries;
        if entries.is_empty() || entries.len() > MAX_BATCH_ENTRIES {
            return Err(Status::invalid_argument(format!("entries must number 1 to {MAX_BATCH_ENTRIES}")));
        }
        // Each entry as Reserve would take it; the valid ones are committed together.
        let checked: Vec<Result<ReserveJob, Status>> = entries
            .iter()
            .map(|entry| {
                let body = entry.reserve.as_ref().ok_or_else(|| Status::invalid_argument("entry without reserve"))?;
                Ok(ReserveJob {
                    tenant_id,
                    reference: reference(&body.reference)?,
                    lines: lines_from(&body.items)?,
                    actor: actor(&principal.for_entry(&entry.on_behalf_of)?),
                })
            })
            .collect();
        let outcomes = answer_entries(checked, |jobs| async {
            let reserved = self.reserver.reserve_all(jobs).await;
            reserved.into_iter().map(|r| r.map(reservation_to).map_err(|e| reserve_status(&e))).collect()
        })
        .await;
        let results = outcomes
            .into_iter()
            .map(|outcome| pb::ReserveManyResult {
                outcome: Some(match outcome {
                    Ok(reservation) => pb::reserve_many_result::Outcome::Reservation(reservation),
                    Err(status) => pb::reserve_many_result::Outcome::Failure(EntryFailure::from_status(&status)),
                }),
            })
            .collect();
        Ok(Response::new(pb::ReserveManyResponse { results }))
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Result<Response<pb::Reservation>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Agent)?;
        let body = request.into_inner();
        let reason = Some(body.reason.trim()).filter(|r| !r.is_empty());
        self.change(tenant_id, &actor, &body.reference, ReservationStatus::Released, reason).await
    }

    async fn commit(&self, request: Request<pb::CommitRequest>) -> Result<Response<pb::Reservation>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Agent)?;
        self.change(tenant_id, &actor, &request.get_ref().reference, ReservationStatus::Committed, None).await
    }

    async fn restock(&self, request: Request<pb::RestockRequest>) -> Result<Response<pb::Reservation>, Status> {
        let (tenant_id, actor) = caller(&request, auth::Role::Manager)?;
        self.change(tenant_id, &actor, &request.get_ref().reference, ReservationStatus::Restocked, Some("returned"))
            .await
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let reference = reference(&request.get_ref().reference)?;
        let mut conn = self.conn().await?;
        let reservation =
            stock::get_reservation(&mut conn, tenant_id, &reference, false).await.map_err(|e| db_status(&e))?;
        reservation.map(|r| Response::new(reservation_to(r))).ok_or_else(|| Status::not_found("reservation not found"))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::InventorySettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Viewer)?;
        let mut conn = self.conn().await?;
        let settings = settings::get(&mut conn, tenant_id).await.map_err(|e| db_status(&e))?;
        Ok(Response::new(pb::InventorySettings {
            default_low_stock_threshold: settings.default_low_stock_threshold,
            currency: settings.currency.map(|c| c.code().to_string()).unwrap_or_default(),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::InventorySettings>, Status> {
        let (tenant_id, _) = caller(&request, auth::Role::Admin)?;
        let body = request.into_inner().settings.ok_or_else(|| Status::invalid_argument("settings are required"))?;
        if body.default_low_stock_threshold < 0 {
            return Err(Status::invalid_argument("default_low_stock_threshold must not be negative"));
        }
        let currency = if body.currency.trim().is_empty() {
            None
        } else {
            Some(body.currency.parse().map_err(|e: money::Error| Status::invalid_argument(e.to_string()))?)
        };
        let settings = settings::Settings { default_low_stock_threshold: body.default_low_stock_threshold, currency };
        let mut tx = self.pool.begin().await.map_err(|e| db_status(&DbError::from(e)))?;
        let before = settings::lock(&mut tx, tenant_id).await.map_err(|e| db_status(&e))?;
        settings::put(&mut tx, tenant_id, &settings).await.map_err(|e| db_status(&e))?;
        if before.default_low_stock_threshold != settings.default_low_stock_threshold {
            // The SKUs that follow the default are measured against the new one now, not at
            // their next stock movement: a seller who raises it hears about what is already low.
            stock::recheck_default_threshold(&mut tx, &self.namespace, tenant_id).await.map_err(|e| db_status(&e))?;
        }
        tx.commit().await.map_err(|e| db_status(&DbError::from(e)))?;
        Ok(Response::new(pb::InventorySettings {
            default_low_stock_threshold: settings.default_low_stock_threshold,
            currency: settings.currency.map(|c| c.code().to_string()).unwrap_or_default(),
        }))
    }
}
