//! Approval: a small saga the draft service drives and waits for, so ApproveDraft can answer
//! with the order.
//!
//! 1. Flip the draft to `approving` under a lease (one caller wins; the others wait for it).
//! 2. Reserve the stock under `draft:{id}:v{version}` (inventory; idempotent per reference).
//! 3. Create the order with the draft id as idempotency key (order service; one order per draft).
//! 4. Mark the draft `approved`.
//!
//! A crash at any step leaves the draft `approving` with a lease that runs out; the sweeper
//! ([`Approver::sweep`]), which runs continuously in every replica, takes the lease and repeats
//! the steps: both calls are idempotent, so nothing is lost and no second order appears. A
//! shortage or a refused order returns the draft to `pending_review`, releasing any stock held.

use std::time::Duration;

use bus::{Envelope, Namespace};
use events::draft::DraftApproved;
use uuid::Uuid;

use crate::domain::draft::{self, Status};
use crate::outbound::DbError;
use crate::outbound::calls::CallError;
use crate::outbound::drafts::{self, DraftRecord};
use crate::outbound::inventory::InventoryClient;
use crate::outbound::orders::OrderClient;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub order_id: Uuid,
    pub order_code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("draft not found")]
    NotFound,
    #[error("the draft is {0} and can no longer be approved")]
    Final(&'static str),
    #[error("the draft cannot be approved: {}", .0.join("; "))]
    Blocked(Vec<String>),
    #[error("{0}")]
    Shortage(String),
    #[error("the order service refused the order: {0}")]
    OrderRefused(String),
    /// A dependency is down: the approval stays in progress and the sweeper finishes it.
    #[error("approval in progress; {0}")]
    InProgress(String),
    #[error("{0}")]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for ApproveError {
    fn from(err: sqlx::Error) -> Self {
        ApproveError::Database(err.into())
    }
}

#[derive(Clone)]
pub struct Approver {
    pub pool: sqlx::PgPool,
    pub namespace: Namespace,
    pub inventory: InventoryClient,
    pub orders: OrderClient,
    /// This process, as lease owner.
    pub owner: String,
    pub lease: Duration,
    /// How long a caller waits for another caller's approval of the same draft.
    pub wait: Duration,
}

pub fn reservation_reference(draft: &DraftRecord) -> String {
    format!("draft:{}:v{}", draft.id, draft.version)
}

impl Approver {
    /// Approves a draft, or waits for the approval already under way, and returns the order.
    pub async fn approve(
        &self,
        tenant_id: Uuid,
        draft_id: Uuid,
        user: &str,
    ) -> Result<(Approved, DraftRecord), ApproveError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let mut tx = self.pool.begin().await?;
            let draft = drafts::get(&mut tx, tenant_id, draft_id, true).await?.ok_or(ApproveError::NotFound)?;
            match draft.status {
                Status::Approved => {
                    let approved = Approved {
                        order_id: draft
                            .order_id
                            .ok_or_else(|| DbError::Internal("approved draft without order".into()))?,
                        order_code: draft.order_code.clone().unwrap_or_default(),
                    };
                    return Ok((approved, draft));
                }
                Status::Rejected | Status::Expired => return Err(ApproveError::Final(draft.status.as_str())),
                Status::PendingReview => {
                    let blockers = draft::approval_blockers(&draft.items);
                    if !blockers.is_empty() {
                        return Err(ApproveError::Blocked(blockers));
                    }
                    let reference = reservation_reference(&draft);
                    drafts::begin_approval(&mut tx, draft.id, &self.owner, self.lease, &reference, user).await?;
                    tx.commit().await?;
                    return self.drive(tenant_id, draft_id, Some(user)).await;
                }
                Status::Approving => {
                    // Someone else is approving it: wait for them (or for their lease to run out).
                    drop(tx);
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApproveError::InProgress("another approval of this draft is still running".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }

    /// Runs the saga for a draft this process holds the lease of.
    async fn drive(
        &self,
        tenant_id: Uuid,
        draft_id: Uuid,
        user: Option<&str>,
    ) -> Result<(Approved, DraftRecord), ApproveError> {
        let mut conn = self.pool.acquire().await?;
        let draft = drafts::get(&mut conn, tenant_id, draft_id, false).await?.ok_or(ApproveError::NotFound)?;
        drop(conn);
        let reference = draft.reservation_reference.clone().unwrap_or_else(|| reservation_reference(&draft));

        match self.inventory.reserve(tenant_id, user, &reference, &draft.items).await {
            Ok(()) => {}
            Err(CallError::Refused { message, code, .. }) => {
                // A shortage (all-or-nothing: nothing is held) or a refusal: back to review.
                self.abort(draft_id, &message).await?;
                return Err(if code == tonic::Code::FailedPrecondition {
                    ApproveError::Shortage(message)
                } else {
                    ApproveError::OrderRefused(message)
                });
            }
            Err(CallError::Unavailable { message, .. }) => return Err(ApproveError::InProgress(message)),
        }
        failpoints::hit("draft.approve.after_reserve");

        let (order_id, order_code) = match self.orders.create_order(&draft, user, &reference).await {
            Ok(created) => created,
            Err(CallError::Refused { message, .. }) => {
                // The order will never be created: no stock may stay held for it.
                if let Err(err) = self.inventory.release(tenant_id, user, &reference, "approval failed").await {
                    tracing::warn!(%draft_id, error = %err, "release after a refused order failed; the sweeper retries");
                    return Err(ApproveError::InProgress(err.to_string()));
                }
                self.abort(draft_id, &message).await?;
                return Err(ApproveError::OrderRefused(message));
            }
            Err(CallError::Unavailable { message, .. }) => return Err(ApproveError::InProgress(message)),
        };
        failpoints::hit("draft.approve.after_create_order");

        let mut tx = self.pool.begin().await?;
        if drafts::holds_lease(&mut tx, draft_id, &self.owner).await? {
            drafts::finish_approval(&mut tx, draft_id, order_id, &order_code).await?;
            let event = DraftApproved {
                draft_id: draft_id.to_string(),
                order_id: order_id.to_string(),
                order_code: order_code.clone(),
            };
            bus::outbox::enqueue(
                &mut tx,
                &self.namespace,
                Envelope::new(tenant_id, format!("draft:{draft_id}"), event, None),
            )
            .await
            .map_err(DbError::from)?;
        }
        tx.commit().await?;
        // Whoever finished it, the draft now names its one order.
        let mut conn = self.pool.acquire().await?;
        let draft = drafts::get(&mut conn, tenant_id, draft_id, false).await?.ok_or(ApproveError::NotFound)?;
        tracing::info!(%draft_id, %order_id, %order_code, "draft approved");
        Ok((Approved { order_id, order_code }, draft))
    }

    async fn abort(&self, draft_id: Uuid, why: &str) -> Result<(), ApproveError> {
        let mut tx = self.pool.begin().await?;
        if drafts::holds_lease(&mut tx, draft_id, &self.owner).await? {
            drafts::abort_approval(&mut tx, draft_id, why).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes over approvals whose lease ran out and finishes them.
    pub async fn sweep(&self) -> Result<usize, ApproveError> {
        let mut tx = self.pool.begin().await?;
        let stuck = drafts::take_expired_leases(&mut tx, &self.owner, self.lease, 20).await?;
        tx.commit().await?;
        let mut finished = 0;
        for (tenant_id, draft_id) in stuck {
            match self.drive(tenant_id, draft_id, None).await {
                Ok(_) => finished += 1,
                Err(err) => tracing::warn!(%draft_id, error = %err, "sweeper could not finish an approval"),
            }
        }
        Ok(finished)
    }

    /// The sweeper: runs continuously, in every replica.
    pub async fn run_sweeper(self, every: Duration, token: tokio_util::sync::CancellationToken) {
        loop {
            match self.sweep().await {
                Ok(0) => {}
                Ok(finished) => tracing::info!(finished, "sweeper finished stuck approvals"),
                Err(err) => tracing::warn!(error = %err, "approval sweep failed; will retry"),
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
