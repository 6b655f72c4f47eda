//! Approval: a small saga the draft service drives and waits for, so ApproveDraft can answer
//! with the order.
//!
//! 1. Flip the draft to `approving` under a lease (one caller wins; the others wait for it).
//! 2. Reserve the stock under `draft:{id}:v{version}` (inventory; idempotent per reference).
//! 3. Create the order with the draft id as idempotency key (order service; one order per draft).
//! 4. Mark the draft `approved`.
//!
//! Steps 1 and 4 of concurrent approvals share transactions (group commits, as inventory's
//! Reserve and the order service's CreateOrder do): a commit costs a disk flush, and one per step
//! per approval would cap approvals far below what the flow must carry.
//!
//! A crash at any step leaves the draft `approving` with a lease that runs out; the sweeper
//! ([`Approver::sweep`]), which runs continuously in every replica, takes the lease and repeats
//! the steps: both calls are idempotent, so nothing is lost and no second order appears. A
//! shortage or a refused order returns the draft to `pending_review`, releasing any stock held.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bus::outbox::OutboxRow;
use bus::{Envelope, Namespace};
use db::{BatchConnections, BatchProcessor, GroupCommit};
use events::draft::DraftApproved;
use uuid::Uuid;

use crate::domain::draft::{self, Status};
use crate::outbound::DbError;
use crate::outbound::approvals::{self, Ask, Finish, Found, Start};
use crate::outbound::batched_calls::{BatchedCalls, OrderCall, ReserveCall};
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

impl From<db::ShuttingDown> for ApproveError {
    fn from(_: db::ShuttingDown) -> Self {
        ApproveError::Database(DbError::Unavailable("the service is shutting down".into()))
    }
}

/// What the approver needs from the outside.
pub struct ApproverParts {
    pub pool: sqlx::PgPool,
    /// The group commits' connections (`db::connect_batches`).
    pub batch_pool: sqlx::PgPool,
    pub namespace: Namespace,
    pub inventory: InventoryClient,
    pub orders: OrderClient,
    pub lease: Duration,
    pub wait: Duration,
    /// Group-commit workers for each of the two draft steps, and the most approvals per commit.
    pub committers: usize,
    pub max_batch: usize,
}

/// A worker future to spawn on the service's task set.
pub type Worker = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone)]
pub struct Approver {
    pool: sqlx::PgPool,
    inventory: InventoryClient,
    /// Reserve and CreateOrder, shared by the approvals under way.
    calls: Arc<BatchedCalls>,
    /// This process, as lease owner.
    owner: String,
    /// How long a caller waits for another caller's approval of the same draft.
    wait: Duration,
    lease: Duration,
    starts: GroupCommit<StartBatches>,
    finishes: GroupCommit<FinishBatches>,
}

pub fn reservation_reference(draft: &DraftRecord) -> String {
    format!("draft:{}:v{}", draft.id, draft.version)
}

impl Approver {
    /// The approver and the workers of its group commits.
    pub fn new(parts: ApproverParts) -> (Self, Vec<Worker>) {
        let owner = format!("draft-{}", Uuid::new_v4().simple());
        let start_batches = Arc::new(StartBatches {
            connections: BatchConnections::new(parts.batch_pool.clone()),
            owner: owner.clone(),
            lease: parts.lease,
        });
        let finish_batches = Arc::new(FinishBatches {
            connections: BatchConnections::new(parts.batch_pool.clone()),
            owner: owner.clone(),
            namespace: parts.namespace,
        });
        let (starts, start_workers) = GroupCommit::new(start_batches, parts.committers, parts.max_batch);
        let (finishes, finish_workers) = GroupCommit::new(finish_batches, parts.committers, parts.max_batch);
        let (calls, call_workers) =
            BatchedCalls::new(parts.inventory.clone(), parts.orders, parts.committers, parts.max_batch);
        let mut workers: Vec<Worker> = call_workers;
        workers.extend(start_workers.into_iter().map(|w| Box::pin(w) as Worker));
        workers.extend(finish_workers.into_iter().map(|w| Box::pin(w) as Worker));
        let approver = Self {
            pool: parts.pool,
            inventory: parts.inventory,
            calls: Arc::new(calls),
            owner,
            wait: parts.wait,
            lease: parts.lease,
            starts,
            finishes,
        };
        (approver, workers)
    }

    /// Approves a draft, or waits for the approval already under way, and returns the order.
    pub async fn approve(
        &self,
        tenant_id: Uuid,
        draft_id: Uuid,
        user: &str,
    ) -> Result<(Approved, DraftRecord), ApproveError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let job = StartJob { tenant_id, draft_id, user: user.to_string() };
            let started = tokio::time::Instant::now();
            match self.starts.submit(job).await?? {
                Started::Leased(draft) => {
                    return self.drive_leased(*draft, Some(user), started.elapsed()).await;
                }
                Started::AlreadyApproved(approved, draft) => return Ok((approved, *draft)),
                Started::InProgress => {
                    // Someone else is approving it: wait for them (or for their lease to run out).
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ApproveError::InProgress("another approval of this draft is still running".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }

    /// Runs the saga for a draft this process holds the lease of (the sweeper's way in).
    async fn drive(
        &self,
        tenant_id: Uuid,
        draft_id: Uuid,
        user: Option<&str>,
    ) -> Result<(Approved, DraftRecord), ApproveError> {
        let mut conn = self.pool.acquire().await?;
        let draft = drafts::get(&mut conn, tenant_id, draft_id, false).await?.ok_or(ApproveError::NotFound)?;
        drop(conn);
        self.drive_leased(draft, user, Duration::ZERO).await
    }

    /// Steps 2 to 4 for a draft as it was when this process took its lease.
    async fn drive_leased(
        &self,
        mut draft: DraftRecord,
        user: Option<&str>,
        lease_took: Duration,
    ) -> Result<(Approved, DraftRecord), ApproveError> {
        let (tenant_id, draft_id) = (draft.tenant_id, draft.id);
        let mut step = tokio::time::Instant::now();
        let reference = draft.reservation_reference.clone().unwrap_or_else(|| reservation_reference(&draft));

        let call = ReserveCall {
            tenant_id,
            user: user.map(str::to_string),
            reference: reference.clone(),
            items: draft.items.clone(),
        };
        match self.calls.reserves.submit(call).await? {
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
        let reserve_took = step.elapsed();
        step = tokio::time::Instant::now();

        let call = OrderCall { draft: draft.clone(), user: user.map(str::to_string), reference: reference.clone() };
        let (order_id, order_code) = match self.calls.orders.submit(call).await? {
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
        let order_took = step.elapsed();
        step = tokio::time::Instant::now();

        let job = FinishJob { tenant_id, draft_id, order_id, order_code: order_code.clone() };
        match self.finishes.submit(job).await?? {
            Some((version, updated_at)) => {
                draft.status = Status::Approved;
                draft.order_id = Some(order_id);
                draft.order_code = Some(order_code.clone());
                draft.lease_owner = None;
                draft.lease_until = None;
                draft.reservation_reference = Some(reference);
                draft.version = version;
                draft.updated_at = updated_at;
            }
            None => {
                // Another replica's sweeper finished it; the draft names the same one order.
                let mut conn = self.pool.acquire().await?;
                draft = drafts::get(&mut conn, tenant_id, draft_id, false).await?.ok_or(ApproveError::NotFound)?;
            }
        }
        // Where an approval's time went, per step, for whoever investigates a slow one.
        tracing::info!(
            %draft_id, %order_id, %order_code,
            lease_ms = lease_took.as_secs_f64() * 1e3,
            reserve_ms = reserve_took.as_secs_f64() * 1e3,
            order_ms = order_took.as_secs_f64() * 1e3,
            finish_ms = step.elapsed().as_secs_f64() * 1e3,
            "draft approved"
        );
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

struct StartJob {
    tenant_id: Uuid,
    draft_id: Uuid,
    user: String,
}

/// How step 1 ended for one caller.
enum Started {
    /// This caller took the lease: it drives the saga.
    Leased(Box<DraftRecord>),
    /// Approved before: the answer is its order.
    AlreadyApproved(Approved, Box<DraftRecord>),
    /// Another caller holds the lease.
    InProgress,
}

/// Step 1 for a batch of callers: lock the drafts, decide per caller, lease the ones that start.
struct StartBatches {
    connections: BatchConnections,
    owner: String,
    lease: Duration,
}

impl BatchProcessor for StartBatches {
    type Job = StartJob;
    type Output = Result<Started, ApproveError>;

    async fn process(&self, jobs: Vec<StartJob>) -> Vec<Self::Output> {
        match self.start(&jobs).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                tracing::error!(error = %err, approvals = jobs.len(), "approval start batch failed");
                jobs.iter().map(|_| Err(ApproveError::Database(err.clone()))).collect()
            }
        }
    }
}

impl StartBatches {
    async fn start(&self, jobs: &[StartJob]) -> Result<Vec<Result<Started, ApproveError>>, DbError> {
        let mut connection = self.connections.take().await?;
        let asks: Vec<Ask<'_>> =
            jobs.iter().map(|j| Ask { id: j.draft_id, tenant_id: j.tenant_id, approved_by: &j.user }).collect();
        // One statement, no transaction: the drafts that can start are leased by it.
        let mut found = approvals::lock_and_lease(connection.alone(), &asks, &self.owner, self.lease).await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        // Drafts this batch answers `Leased` for (one caller each: a second one waits), and
        // which of the jobs took each.
        let mut leased: HashSet<Uuid> = HashSet::new();
        let mut takers: Vec<usize> = Vec::new();
        // Drafts that can start but were not leased by the statement (their items changed while
        // it waited for the lock): leased below, at the version read.
        let mut late: Vec<(usize, String)> = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            let Some(Found { draft, lease }) = found.get(&job.draft_id).filter(|f| f.draft.tenant_id == job.tenant_id)
            else {
                outcomes.push(Err(ApproveError::NotFound));
                continue;
            };
            outcomes.push(match draft.status {
                Status::Approved => match draft.order_id {
                    Some(order_id) => {
                        let approved = Approved { order_id, order_code: draft.order_code.clone().unwrap_or_default() };
                        Ok(Started::AlreadyApproved(approved, Box::new(draft.clone())))
                    }
                    None => Err(ApproveError::Database(DbError::Internal("approved draft without order".into()))),
                },
                Status::Rejected | Status::Expired => Err(ApproveError::Final(draft.status.as_str())),
                Status::Approving => Ok(Started::InProgress),
                // A second caller for a draft leased in this same batch waits like any other.
                Status::PendingReview if leased.contains(&draft.id) => Ok(Started::InProgress),
                Status::PendingReview => {
                    let blockers = draft::approval_blockers(&draft.items);
                    match lease {
                        Some(_) if !blockers.is_empty() => {
                            // The SQL check and the rule disagree: never approve past the rule.
                            drafts::abort_approval(connection.alone(), draft.id, &blockers.join("; ")).await?;
                            Err(ApproveError::Blocked(blockers))
                        }
                        Some((_, reference)) if *reference != reservation_reference(draft) => {
                            return Err(DbError::Internal(format!("lease stored reference {reference}")));
                        }
                        Some(_) => {
                            leased.insert(draft.id);
                            takers.push(index);
                            Ok(Started::InProgress) // replaced by Leased below
                        }
                        None if blockers.is_empty() => {
                            leased.insert(draft.id);
                            takers.push(index);
                            late.push((index, reservation_reference(draft)));
                            Ok(Started::InProgress) // replaced by Leased once the lease is written
                        }
                        None => Err(ApproveError::Blocked(blockers)),
                    }
                }
            });
        }
        let starts: Vec<Start<'_>> = late
            .iter()
            .filter_map(|(index, reference)| {
                let job = &jobs[*index];
                let version = found.get(&job.draft_id)?.draft.version;
                Some(Start { id: job.draft_id, version, reference, approved_by: &job.user })
            })
            .collect();
        let late_leases = approvals::begin_many(connection.alone(), &starts, &self.owner, self.lease).await?;
        connection.keep();
        for index in takers {
            let Some(Found { mut draft, lease }) = found.remove(&jobs[index].draft_id) else { continue };
            let (lease_until, reference) = match lease {
                Some(lease) => lease,
                None => match late_leases.get(&draft.id) {
                    Some(until) => (*until, reservation_reference(&draft)),
                    // Changed again since it was read: the caller looks again.
                    None => continue,
                },
            };
            draft.status = Status::Approving;
            draft.lease_owner = Some(self.owner.clone());
            draft.lease_until = Some(lease_until);
            draft.reservation_reference = Some(reference);
            outcomes[index] = Ok(Started::Leased(Box::new(draft)));
        }
        Ok(outcomes)
    }
}

struct FinishJob {
    tenant_id: Uuid,
    draft_id: Uuid,
    order_id: Uuid,
    order_code: String,
}

/// Step 4 for a batch: mark approved the drafts whose lease this process still holds, with
/// their `draft.approved` events in the same transaction. `None`: someone else finished it.
struct FinishBatches {
    connections: BatchConnections,
    owner: String,
    namespace: Namespace,
}

type Finished = Option<(i64, time::OffsetDateTime)>;

impl BatchProcessor for FinishBatches {
    type Job = FinishJob;
    type Output = Result<Finished, ApproveError>;

    async fn process(&self, jobs: Vec<FinishJob>) -> Vec<Self::Output> {
        match self.finish(&jobs).await {
            Ok(mut finished) => jobs.iter().map(|job| Ok(finished.remove(&job.draft_id))).collect(),
            Err(err) => {
                tracing::error!(error = %err, approvals = jobs.len(), "approval finish batch failed");
                jobs.iter().map(|_| Err(ApproveError::Database(err.clone()))).collect()
            }
        }
    }
}

impl FinishBatches {
    async fn finish(
        &self,
        jobs: &[FinishJob],
    ) -> Result<std::collections::HashMap<Uuid, (i64, time::OffsetDateTime)>, DbError> {
        let mut finishes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let event = DraftApproved {
                draft_id: job.draft_id.to_string(),
                order_id: job.order_id.to_string(),
                order_code: job.order_code.clone(),
            };
            let envelope = Envelope::new(job.tenant_id, format!("draft:{}", job.draft_id), event, None);
            let event = OutboxRow::for_event(&self.namespace, envelope).map_err(DbError::from)?;
            finishes.push(Finish { id: job.draft_id, order_id: job.order_id, order_code: &job.order_code, event });
        }
        // One statement (the drafts and their events): it needs no transaction around it.
        let mut connection = self.connections.take().await?;
        let finished = approvals::finish_many(connection.alone(), &finishes, &self.owner).await?;
        connection.keep();
        Ok(finished)
    }
}
